"""Needs scoring for targeted assistance: the households' data and indicators, the review list,
the household page's case and decisions, review tasks and the "policy finds people" rules, the
district summary, fairness by subgroup, imports and the plain words of the codes. The index and
the model themselves are pure computation in ``models`` (wired in by ``cityops.app``).

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "data",
    "fairness",
    "household",
    "imports",
    "indicators",
    "labels",
    "review",
    "rules",
    "summary",
    "tasks",
]

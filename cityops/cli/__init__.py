"""The ``cityops`` command (click): each sub-command, and what they share."""

__all__ = [
    "common",
    "demo",
    "main",
    "needs",
    "needs_rules",
    "needs_score",
]

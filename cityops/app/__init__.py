"""The composition root: the only room that wires ``ingest``, ``models`` and ``dashboards`` into the
services (the detectors, ingest with detection and dispatch, the scheduler's jobs, needs scoring
and the web server).

Other rooms use the modules of ``__all__``; the room's others are its own.
"""

__all__ = [
    "jobs",
    "needs_scoring",
    "street_rules",
    "water_rules",
    "web",
    "wiring",
]

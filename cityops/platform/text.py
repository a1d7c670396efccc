"""Plain words for values that every room shows people: durations.

(Detectors in ``models`` write their own sentences with :func:`models.decisions.duration_text`:
that room imports nothing of ours.)
"""

from __future__ import annotations

from datetime import timedelta

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def duration_text(value: timedelta | float) -> str:
    """A duration (or seconds) in its two largest units: '3 d 4 h', '2 h 5 min', '45 min', '30 s';
    a negative one as its size ('overdue ...' says the sign)."""
    seconds = int(abs(value.total_seconds() if isinstance(value, timedelta) else value))
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts[:2]) or "0 s"

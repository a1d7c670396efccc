"""Simulated time that never runs ahead of the real clock.

``SimClock(start, speed)`` starts at ``start`` and advances ``speed`` simulated seconds per real
second until it meets the real clock; from then on it *is* the real clock. Starting in the past at a
high speed is the catch-up mode of the demo (a day of history in minutes, then live); ``speed=1``
with ``start`` = now is plain real time. Because the ingest rejects readings from the future, the
clock is capped at the real time in every mode.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    """The real wall-clock time, timezone-aware UTC."""
    return datetime.now(UTC)


class SimClock:
    """Simulated time: ``start + speed * real elapsed``, never later than the real time."""

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        *,
        real_now: Callable[[], datetime] = utc_now,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self._real_now = real_now
        self._real_start = real_now()
        if start > self._real_start:
            raise ValueError("start is in the future: the ingest rejects future timestamps")
        self.start = start.astimezone(UTC)
        self.speed = float(speed)

    @classmethod
    def catch_up(
        cls,
        history: timedelta,
        speed: float,
        *,
        real_now: Callable[[], datetime] = utc_now,
    ) -> SimClock:
        """A clock starting ``history`` before now, running at ``speed`` until it is live."""
        if history < timedelta(0):
            raise ValueError("history must not be negative")
        return cls(real_now() - history, speed, real_now=real_now)

    def now(self) -> datetime:
        """The current simulated time (UTC)."""
        real = self._real_now()
        return min(self.start + (real - self._real_start) * self.speed, real)

    def caught_up(self) -> bool:
        """True once the simulated time has reached the real time."""
        real = self._real_now()
        return self.start + (real - self._real_start) * self.speed >= real

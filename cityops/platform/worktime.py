"""Working time: time limits that count only working hours of working days (docs/cases.md).

A working day is Monday to Friday unless it is a public holiday, or a weekend day named as a
make-up working day (调休). Working periods are local wall-clock times of the district; the time
they contain is real elapsed time, so a period that spans a DST change is an hour shorter or longer.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_PERIOD = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_working_hours(text: str) -> tuple[tuple[time, time], ...]:
    """Parse ``"09:00-12:00,13:30-17:30"``: increasing, non-overlapping periods of one day."""
    periods: list[tuple[time, time]] = []
    for part in text.split(","):
        match = _PERIOD.match(part.strip())
        if match is None:
            raise ValueError(f"{part.strip()!r} is not a period HH:MM-HH:MM (in {text!r})")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = time(h1, m1), time(h2, m2)
        if end <= start:
            raise ValueError(f"period {part.strip()!r} ends before it starts")
        if periods and start < periods[-1][1]:
            raise ValueError(
                f"period {part.strip()!r} starts before the previous one ends: periods must be"
                " increasing and not overlap"
            )
        periods.append((start, end))
    return tuple(periods)


@dataclass(frozen=True)
class WorkCalendar:
    """Working periods of a working day, in ``tz``, and the days that differ from Mon-Fri."""

    tz: ZoneInfo
    periods: tuple[tuple[time, time], ...]
    holidays: frozenset[date]
    workdays: frozenset[date]

    def is_working_day(self, day: date) -> bool:
        """True for Mon-Fri that is not a holiday, and for a make-up working day."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    @property
    def day_length(self) -> timedelta:
        """Working time in one working day (nominal: wall-clock length of the periods)."""
        day = date.min
        return sum(
            (datetime.combine(day, e) - datetime.combine(day, s) for s, e in self.periods),
            timedelta(),
        )

    def _intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) from the local day of ``start`` on, endlessly."""
        day = start.astimezone(self.tz).date()
        while True:
            if self.is_working_day(day):
                for s, e in self.periods:
                    yield (
                        datetime.combine(day, s, self.tz).astimezone(UTC),
                        datetime.combine(day, e, self.tz).astimezone(UTC),
                    )
            day += timedelta(days=1)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """``start`` plus ``duration`` of working time, in the time zone of ``start``.

        A start outside working time begins at the next working period; a limit that ends
        exactly at the end of a period is that end, not the start of the next one.
        """
        _check_aware(start)
        if duration < timedelta():
            raise ValueError(f"duration must not be negative, got {duration}")
        now, remaining = start.astimezone(UTC), duration
        for s, e in self._intervals(start):
            if e <= now:
                continue
            begin = max(s, now)
            if remaining <= e - begin:
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= e - begin
        raise AssertionError("unreachable: the calendar has working days")  # pragma: no cover

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between ``start`` and ``end`` (zero if ``end`` is not after ``start``)."""
        _check_aware(start)
        _check_aware(end)
        lo, hi = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta()
        if hi <= lo:
            return total
        for s, e in self._intervals(start):
            if s >= hi:
                return total
            if e > lo:
                total += min(e, hi) - max(s, lo)
        raise AssertionError("unreachable: intervals are endless")  # pragma: no cover


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment} has no time zone: working time needs aware datetimes")


class _Holiday(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    first: date
    last: date
    workdays: list[date] = []

    @model_validator(mode="after")
    def _consistent(self) -> _Holiday:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) is before first ({self.first})")
        if (self.last - self.first).days > 31:
            raise ValueError(f"{self.first} to {self.last} is more than a month off")
        for day in self.workdays:
            if day.weekday() < 5:
                raise ValueError(f"make-up working day {day} is a {day:%A}, not a weekend day")
            if self.first <= day <= self.last:
                raise ValueError(f"make-up working day {day} is inside the days off")
        return self


class _HolidayFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holiday: list[dict[str, object]] = []


def load_calendar(path: Path | None, tz: ZoneInfo, working_hours: str) -> WorkCalendar:
    """Read a holidays file (``None``: the packaged one); errors name the file and the entry."""
    source = path if path is not None else files("cityops") / "data" / "holidays.toml"
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
        entries = _HolidayFile.model_validate(raw).holiday
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the holidays file {source}: {exc}") from None
    except ValidationError as exc:
        raise ValueError(f"holidays file {source}: {_messages(exc)}") from None
    holidays: set[date] = set()
    workdays: set[date] = set()
    for number, entry in enumerate(entries, 1):
        try:
            holiday = _Holiday.model_validate(entry)
        except ValidationError as exc:
            name = entry.get("name", "without a name")
            raise ValueError(
                f"holidays file {source}, entry {number} ({name}): {_messages(exc)}"
            ) from None
        span = (holiday.last - holiday.first).days
        holidays.update(holiday.first + timedelta(days=n) for n in range(span + 1))
        workdays.update(holiday.workdays)
    clash = sorted(holidays & workdays)
    if clash:
        raise ValueError(f"holidays file {source}: {clash[0]} is both a day off and a working day")
    periods = parse_working_hours(working_hours)
    return WorkCalendar(tz, periods, frozenset(holidays), frozenset(workdays))


def _messages(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors()
    )


def deadline(calendar: WorkCalendar, start: datetime, hours: float, *, urgent: bool) -> datetime:
    """The time limit of ``hours`` from ``start``: clock time when urgent, else working time."""
    if hours < 0:
        raise ValueError(f"a time limit must not be negative, got {hours} hours")
    if urgent:
        _check_aware(start)
        return (start.astimezone(UTC) + timedelta(hours=hours)).astimezone(start.tzinfo)
    return calendar.add(start, timedelta(hours=hours))


def working_days(calendar: WorkCalendar, start: datetime, days: float) -> datetime:
    """The limit of ``days`` working days from ``start`` (``days`` working-day lengths)."""
    if days < 0:
        raise ValueError(f"a time limit must not be negative, got {days} days")
    return calendar.add(start, calendar.day_length * days)

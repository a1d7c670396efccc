"""The time limits of a case's stages (docs/cases.md): when it must be dispatched, signed for and
handled.

- accept + register + dispatch: ``cases.dispatch_hours`` from when the case was reported;
- sign for: ``cases.sign_hours`` from the dispatch;
- handle: the minor category's ``handle_hours`` from the dispatch; for a 12345 hotline case also
  its call type's limit (``cases.call_type_days``, working days), whichever comes sooner.

Limits run in working time (the holiday calendar and the working hours) unless the case is urgent:
urgent cases run in clock time. The call type's limit is counted in working days either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cityops.cases.categories import Catalogue, load_categories
from cityops.cases.tickets import STAGE_STATES
from cityops.platform.settings import CasesSettings, Settings
from cityops.platform.worktime import WorkCalendar, deadline, load_calendar, working_days

_IN = {stage: ", ".join(f"'{s}'" for s in states) for stage, states in STAGE_STATES.items()}
_DEADLINE = f"""CASE WHEN t.status IN ({_IN['dispatch']}) THEN t.dispatch_due_at
         WHEN t.status IN ({_IN['sign']}) THEN t.ack_due_at
         WHEN t.status IN ({_IN['handle']}) THEN t.due_at END"""

# Select-list SQL for a ``tickets t`` row: the limit of its current stage (``deadline``), the
# stage (``deadline_kind``: dispatch, sign or handle) and whether it has passed at ``%(now)s``
# (``overdue``). A case is overdue when the limit of its current stage has passed.
DEADLINE_SQL = f"""
    {_DEADLINE} AS deadline,
    CASE WHEN t.status IN ({_IN['dispatch']}) THEN 'dispatch'
         WHEN t.status IN ({_IN['sign']}) THEN 'sign'
         WHEN t.status IN ({_IN['handle']}) THEN 'handle' END AS deadline_kind,
    coalesce({_DEADLINE} < %(now)s, false) AS overdue
"""


@dataclass(frozen=True)
class CaseClock:
    """The category catalogue, the working-time calendar and the limits of the settings."""

    catalogue: Catalogue
    calendar: WorkCalendar
    cases: CasesSettings

    @classmethod
    def from_settings(cls, settings: Settings) -> CaseClock:
        """Load the categories and holidays files the settings name (or the packaged ones)."""
        cases = settings.cases
        return cls(
            load_categories(cases.categories_file),
            load_calendar(cases.holidays_file, settings.tz, cases.working_hours),
            cases,
        )

    @property
    def tz(self) -> ZoneInfo:
        """The district's time zone (working hours are local times in it)."""
        return self.calendar.tz

    def dispatch_due(self, start: datetime, urgent: bool) -> datetime:
        """When a case reported at ``start`` must be accepted, registered and dispatched."""
        return deadline(self.calendar, start, self.cases.dispatch_hours, urgent=urgent)

    def sign_due(self, start: datetime, urgent: bool) -> datetime:
        """When a case dispatched at ``start`` must be signed for."""
        return deadline(self.calendar, start, self.cases.sign_hours, urgent=urgent)

    def handle_due(
        self, start: datetime, category: str, urgent: bool, call_type: str | None = None
    ) -> datetime:
        """When a case of ``category`` dispatched at ``start`` must be handled; a hotline case's
        call type limit applies too when it is sooner. Raises ValueError for an unknown category
        or call type."""
        hours = self.catalogue.get(category).handle_hours
        due = deadline(self.calendar, start, hours, urgent=urgent)
        if call_type is not None:
            if call_type not in self.cases.call_type_days:
                raise ValueError(
                    f"unknown call type {call_type!r}; one of"
                    f" {', '.join(sorted(self.cases.call_type_days))}"
                )
            due = min(due, working_days(self.calendar, start,
                                        self.cases.call_type_days[call_type]))
        return due

"""When a late case is told to whom (cityops.cases.escalation.steps_due), without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityops.cases.escalation import steps_due
from cityops.platform.settings import Settings

DEADLINE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SETTINGS = Settings()  # street centre 30 min after the deadline, district centre 60 min


def at(minutes: float) -> datetime:
    return DEADLINE + timedelta(minutes=minutes)


def test_a_late_signature_goes_worker_then_street_then_district() -> None:
    assert steps_due("sign", DEADLINE, at(-1), SETTINGS) == []
    assert steps_due("sign", DEADLINE, at(0), SETTINGS) == [1]
    assert steps_due("sign", DEADLINE, at(29), SETTINGS) == [1]
    assert steps_due("sign", DEADLINE, at(30), SETTINGS) == [1, 2]
    assert steps_due("sign", DEADLINE, at(60), SETTINGS) == [1, 2, 3]
    assert steps_due("handle", DEADLINE, at(45), SETTINGS) == [1, 2]


def test_a_case_not_dispatched_has_no_worker_to_remind_its_street_is_told_at_once() -> None:
    assert steps_due("dispatch", DEADLINE, at(0), SETTINGS) == [2]
    assert steps_due("dispatch", DEADLINE, at(59), SETTINGS) == [2]
    assert steps_due("dispatch", DEADLINE, at(60), SETTINGS) == [2, 3]


def test_the_steps_follow_the_settings() -> None:
    quick = Settings(cases={"escalate_street_after_min": 5, "escalate_district_after_min": 10})
    assert steps_due("sign", DEADLINE, at(5), quick) == [1, 2]
    assert steps_due("sign", DEADLINE, at(10), quick) == [1, 2, 3]

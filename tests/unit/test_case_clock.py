"""Time limits of a case's stages: working time across a weekend and a holiday, clock time when
urgent, the hotline call type's limit (default working hours 09:00-12:00, 13:30-17:30)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cityops.cases.clock import CaseClock
from cityops.platform.settings import Settings

SH = ZoneInfo("Asia/Shanghai")
FRIDAY_5PM = datetime(2026, 11, 20, 17, 0, tzinfo=SH)  # half an hour of work left that day


@pytest.fixture(scope="module")
def clock() -> CaseClock:
    return CaseClock.from_settings(Settings())


def test_dispatch_and_sign_limits_skip_the_weekend_unless_urgent(clock: CaseClock) -> None:
    monday = datetime(2026, 11, 23, 9, 30, tzinfo=SH)
    assert clock.dispatch_due(FRIDAY_5PM, urgent=False) == monday
    assert clock.sign_due(FRIDAY_5PM, urgent=False) == monday
    assert clock.dispatch_due(FRIDAY_5PM, urgent=True) == datetime(2026, 11, 20, 18, 0, tzinfo=SH)
    assert clock.sign_due(FRIDAY_5PM, urgent=True) == datetime(2026, 11, 20, 18, 0, tzinfo=SH)
    # the lunch break does not count
    assert clock.sign_due(datetime(2026, 11, 20, 11, 30, tzinfo=SH), urgent=False) == datetime(
        2026, 11, 20, 14, 0, tzinfo=SH)


def test_handling_limit_is_the_categorys_and_skips_national_day(clock: CaseClock) -> None:
    # C0102 rain grate: 8 working hours. 1.5 h on Wed 30 Sep, then 1-7 Oct are days off
    start = datetime(2026, 9, 30, 16, 0, tzinfo=SH)
    assert clock.handle_due(start, "C0102", urgent=False) == datetime(2026, 10, 8, 17, 0,
                                                                         tzinfo=SH)
    # urgent: clock time, 8 hours later through the night and the holiday
    assert clock.handle_due(start, "C0102", urgent=True) == datetime(2026, 10, 1, 0, 0, tzinfo=SH)
    # E0401 road waterlogging: 2 hours
    assert clock.handle_due(FRIDAY_5PM, "E0401", urgent=True) == datetime(2026, 11, 20, 19, 0,
                                                                          tzinfo=SH)


def test_hotline_call_type_limit_applies_when_sooner(clock: CaseClock) -> None:
    start = datetime(2026, 11, 20, 10, 0, tzinfo=SH)
    # E9999 other: 40 working hours; a consultation must be answered within 1 working day (7 h)
    assert clock.handle_due(start, "E9999", urgent=False) == datetime(2026, 11, 27, 16, 30,
                                                                      tzinfo=SH)
    assert clock.handle_due(start, "E9999", urgent=False, call_type="consultation") == datetime(
        2026, 11, 23, 10, 0, tzinfo=SH)
    # E0403 gas smell: 1 working hour is sooner than a complaint's 5 working days
    assert clock.handle_due(start, "E0403", urgent=False, call_type="complaint") == datetime(
        2026, 11, 20, 11, 0, tzinfo=SH)


def test_unknown_category_or_call_type_is_an_error(clock: CaseClock) -> None:
    with pytest.raises(ValueError, match="unknown case category 'E7777'"):
        clock.handle_due(FRIDAY_5PM, "E7777", urgent=False)
    with pytest.raises(ValueError, match="unknown call type 'gossip'"):
        clock.handle_due(FRIDAY_5PM, "E9999", urgent=False, call_type="gossip")


def test_settings_choose_the_files_hours_and_limits(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.toml"
    holidays.write_text('[[holiday]]\nname = "Local day off"\nfirst = 2026-11-23\n'
                        'last = 2026-11-23\n')
    settings = Settings(cases={"holidays_file": holidays, "working_hours": "08:00-18:00",
                               "dispatch_hours": 2, "sign_hours": 0.5})
    clock = CaseClock.from_settings(settings)
    assert clock.tz == SH
    # Fri 17:00 + 2 working hours: one on Friday, Monday is the local day off, 09:00 on Tuesday
    assert clock.dispatch_due(FRIDAY_5PM, urgent=False) == datetime(2026, 11, 24, 9, 0, tzinfo=SH)
    assert clock.sign_due(FRIDAY_5PM, urgent=False) == datetime(2026, 11, 20, 17, 30, tzinfo=SH)

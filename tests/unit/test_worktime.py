"""Working-time calendar: deadlines across weekends, 2026 holidays and DST; the cases settings."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityops.platform.settings import SettingsError, load_settings
from cityops.platform.worktime import (
    WorkCalendar,
    deadline,
    load_calendar,
    parse_working_hours,
    working_days,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
HOURS = "09:00-12:00,13:30-17:30"
CAL = load_calendar(None, SHANGHAI, HOURS)


def at(day: str, hm: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=tz)


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


def test_packaged_2026_calendar() -> None:
    assert CAL.day_length == h(7)
    # Spring Festival: 15-23 Feb off; Saturdays 14 and 28 Feb are working days.
    assert not any(CAL.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert CAL.is_working_day(date(2026, 2, 14)) and CAL.is_working_day(date(2026, 2, 28))
    assert not CAL.is_working_day(date(2026, 2, 21))  # an ordinary... holiday Saturday
    # National Day: 1-7 Oct off; Sunday 20 Sep and Saturday 10 Oct are working days.
    assert not any(CAL.is_working_day(date(2026, 10, d)) for d in range(1, 8))
    assert CAL.is_working_day(date(2026, 9, 20)) and CAL.is_working_day(date(2026, 10, 10))
    assert CAL.is_working_day(date(2026, 1, 4))  # Sunday after New Year's Day
    assert not CAL.is_working_day(date(2026, 11, 21))  # an ordinary Saturday
    assert CAL.is_working_day(date(2026, 11, 20))
    assert len(CAL.holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (("2026-11-23", "10:00"), 1, ("2026-11-23", "11:00")),  # inside a period
        (("2026-11-23", "11:00"), 1, ("2026-11-23", "12:00")),  # ends exactly at the lunch break
        (("2026-11-23", "11:30"), 1, ("2026-11-23", "14:00")),  # across lunch
        (("2026-11-23", "12:30"), 1, ("2026-11-23", "14:30")),  # starts at lunch
        (("2026-11-23", "12:00"), 1, ("2026-11-23", "14:30")),  # starts at a period's end
        (("2026-11-23", "13:30"), 1, ("2026-11-23", "14:30")),  # starts at a period's start
        (("2026-11-23", "07:00"), 1, ("2026-11-23", "10:00")),  # before the day starts
        (("2026-11-23", "20:00"), 1, ("2026-11-24", "10:00")),  # after the day ends
        (("2026-11-23", "17:30"), 0, ("2026-11-24", "09:00")),  # no time: next working moment
        (("2026-11-23", "10:00"), 7, ("2026-11-24", "10:00")),  # one working day
        (("2026-11-27", "17:00"), 1, ("2026-11-30", "09:30")),  # Friday across the weekend
        (("2026-11-28", "10:00"), 1, ("2026-11-30", "10:00")),  # reported on a Saturday
        (("2026-09-30", "16:00"), 2, ("2026-10-08", "09:30")),  # into National Day
        (("2026-10-09", "17:00"), 1, ("2026-10-10", "09:30")),  # onto the make-up Saturday
        (("2026-02-13", "17:00"), 1, ("2026-02-14", "09:30")),  # Spring Festival make-up Saturday
        (("2026-02-14", "17:00"), 1, ("2026-02-24", "09:30")),  # over Spring Festival
        (("2026-09-19", "10:00"), 1, ("2026-09-20", "10:00")),  # make-up Sunday 20 Sep
    ],
)
def test_add_working_hours(
    start: tuple[str, str], hours: float, expected: tuple[str, str]
) -> None:
    begin = at(*start)
    assert CAL.add(begin, h(hours)) == at(*expected)
    assert deadline(CAL, begin, hours, urgent=False) == at(*expected)


def test_result_in_the_start_time_zone() -> None:
    start = at("2026-11-27", "17:00").astimezone(UTC)  # 09:00 UTC on a Friday
    end = CAL.add(start, h(1))
    assert end.tzinfo is UTC and end == at("2026-11-30", "09:30")


def test_urgent_runs_in_clock_time() -> None:
    start = at("2026-10-01", "23:00")  # a holiday, at night
    assert deadline(CAL, start, 2, urgent=True) == at("2026-10-02", "01:00")
    # Clock time is real elapsed time, also across a DST change (Berlin, 29 March 2026 02:00).
    berlin = at("2026-03-29", "01:30", BERLIN)
    assert deadline(CAL, berlin, 1, urgent=True) == at("2026-03-29", "03:30", BERLIN)


def test_working_days() -> None:
    start = at("2026-09-30", "16:00")
    # Oct 8, 9, 10 (make-up Saturday), 12, 13.
    assert working_days(CAL, start, 5) == at("2026-10-13", "16:00")
    assert working_days(CAL, at("2026-11-23", "09:00"), 0.5) == at("2026-11-23", "14:00")


def test_elapsed() -> None:
    assert CAL.elapsed(at("2026-11-27", "17:00"), at("2026-11-30", "09:30")) == h(1)
    assert CAL.elapsed(at("2026-11-23", "08:00"), at("2026-11-23", "20:00")) == h(7)
    assert CAL.elapsed(at("2026-09-30", "09:00"), at("2026-10-09", "09:00")) == h(14)
    assert CAL.elapsed(at("2026-11-23", "12:00"), at("2026-11-23", "10:00")) == timedelta()
    assert CAL.elapsed(at("2026-10-02", "10:00"), at("2026-10-03", "10:00")) == timedelta()


def test_far_deadlines_are_fast() -> None:
    start = at("2026-11-23", "10:00")
    began = clock.perf_counter()
    end = working_days(CAL, start, 750)  # about three years
    assert CAL.elapsed(start, end) == CAL.day_length * 750
    assert clock.perf_counter() - began < 0.5


def test_dst_zone_counts_real_time(tmp_path: Path) -> None:
    # A calendar with Sunday 29 March 2026 as a working day, 00:00-06:00: Berlin skips 02:00-03:00.
    holidays = tmp_path / "holidays.toml"
    holidays.write_text('[[holiday]]\nname = "x"\nfirst = 2026-03-27\nlast = 2026-03-27\n'
                        "workdays = [2026-03-29]\n")
    cal = load_calendar(holidays, BERLIN, "00:00-06:00")
    day = (at("2026-03-29", "00:00", BERLIN), at("2026-03-30", "00:00", BERLIN))
    assert cal.elapsed(*day) == h(5)
    assert cal.add(day[0], h(5)) == at("2026-03-29", "06:00", BERLIN)
    # Across the spring-forward weekend in ordinary hours.
    (tmp_path / "none.toml").write_text("")
    office = load_calendar(tmp_path / "none.toml", BERLIN, "09:00-17:00")
    friday = at("2026-03-27", "16:00", BERLIN)
    assert office.add(friday, h(3)) == at("2026-03-30", "11:00", BERLIN)
    assert office.elapsed(friday, at("2026-03-30", "11:00", BERLIN)) == h(3)


def test_naive_and_negative_rejected() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        CAL.add(datetime(2026, 11, 23, 10), h(1))
    with pytest.raises(ValueError, match="negative"):
        CAL.add(at("2026-11-23", "10:00"), h(-1))
    with pytest.raises(ValueError, match="negative"):
        deadline(CAL, at("2026-11-23", "10:00"), -1, urgent=True)


_moments = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 1, 31), timezones=st.just(SHANGHAI)
)


@given(start=_moments, minutes=st.integers(min_value=0, max_value=60 * 7 * 40))
def test_elapsed_inverts_add(start: datetime, minutes: int) -> None:
    end = CAL.add(start, timedelta(minutes=minutes))
    assert end >= start
    assert CAL.elapsed(start, end) == timedelta(minutes=minutes)
    # Nothing earlier gives as much working time (when any is needed).
    if minutes:
        assert CAL.elapsed(start, end - timedelta(seconds=1)) < timedelta(minutes=minutes)


@given(a=_moments, b=_moments, c=_moments)
def test_elapsed_adds_up(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    assert CAL.elapsed(a, c) == CAL.elapsed(a, b) + CAL.elapsed(b, c)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9:00-12:00", "not a period"),
        ("09:00-12:00;13:00-17:00", "not a period"),
        ("09:00-24:00", "not a period"),
        ("12:00-09:00", "ends before it starts"),
        ("09:00-09:00", "ends before it starts"),
        ("09:00-12:00,11:30-17:00", "not overlap"),
        ("13:30-17:30,09:00-12:00", "not overlap"),
        ("", "not a period"),
    ],
)
def test_bad_working_hours(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_working_hours(text)


def test_periods_may_touch() -> None:
    assert len(parse_working_hours("08:00-12:00, 12:00-16:00")) == 2


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('name = "A"\nfirst = 2026-05-05\nlast = 2026-05-01', "entry 1 \\(A\\).*before first"),
        ('name = "A"\nfirst = 2026-05-01\nlast = 2026-05-05\nworkdays = [2026-05-06]',
         "2026-05-06 is a Wednesday"),
        ('name = "A"\nfirst = 2026-05-01\nlast = 2026-05-05\nworkdays = [2026-05-02]',
         "inside the days off"),
        ('name = "A"\nfirst = "May Day"\nlast = 2026-05-05', "entry 1 \\(A\\): first"),
        ('name = "A"\nfirst = 2026-05-01', "last: Field required"),
        ('name = "A"\nfirst = 2026-05-01\nlast = 2026-05-01\nday = 1', "day: Extra inputs"),
    ],
)
def test_bad_holidays_file(tmp_path: Path, entry: str, problem: str) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text(f"[[holiday]]\n{entry}\n")
    with pytest.raises(ValueError, match=problem) as err:
        load_calendar(path, SHANGHAI, HOURS)
    assert str(path) in str(err.value)


def test_unreadable_holidays_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read the holidays file .*nope\.toml"):
        load_calendar(tmp_path / "nope.toml", SHANGHAI, HOURS)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[holiday]\n")
    with pytest.raises(ValueError, match=r"broken\.toml"):
        load_calendar(broken, SHANGHAI, HOURS)
    clash = tmp_path / "clash.toml"
    clash.write_text('[[holiday]]\nname = "A"\nfirst = 2026-05-01\nlast = 2026-05-03\n'
                     '[[holiday]]\nname = "B"\nfirst = 2026-05-04\nlast = 2026-05-04\n'
                     "workdays = [2026-05-02]\n")
    with pytest.raises(ValueError, match="2026-05-02 is both a day off and a working day"):
        load_calendar(clash, SHANGHAI, HOURS)


def test_calendar_is_plain_data() -> None:
    cal = WorkCalendar(SHANGHAI, parse_working_hours("09:00-17:00"), frozenset(), frozenset())
    assert cal.day_length == h(8)
    assert cal.add(at("2026-02-16", "09:00"), h(8)) == at("2026-02-16", "17:00")  # no holidays


def test_cases_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CITYOPS_CONFIG", "CITYOPS_CASES__WORKING_HOURS"):
        monkeypatch.delenv(var, raising=False)
    cases = load_settings().cases
    assert cases.working_hours == HOURS and cases.dispatch_hours == 1 and cases.sign_hours == 1
    assert cases.call_type_days["suggestion"] == 15 and cases.bad_review_follow_up_days == 5
    assert cases.categories_file is None and cases.holidays_file is None
    monkeypatch.setenv("CITYOPS_CASES__WORKING_HOURS", "08:30-12:00,12:30-17:00")
    assert load_settings().cases.working_hours == "08:30-12:00,12:30-17:00"


@pytest.mark.parametrize(
    ("cases", "problem"),
    [
        ({"working_hours": "09:00-12:00,11:00-13:00"},
         "cases.working_hours [CITYOPS_CASES__WORKING_HOURS]: Value error, period '11:00-13:00'"),
        ({"working_hours": "9-5"}, "cases.working_hours [CITYOPS_CASES__WORKING_HOURS]"),
        ({"call_type_days": {"help": 3}}, "cases.call_type_days [CITYOPS_CASES__CALL_TYPE_DAYS]"),
        ({"call_type_days": {"consultation": 1, "help": 3, "complaint": 5, "report": 0,
                             "suggestion": 15}}, "more than 0 working days"),
        ({"escalate_street_after_min": 60}, "escalate_district_after_min must be later"),
        ({"max_open_per_worker": 0}, "cases.max_open_per_worker"),
    ],
)
def test_bad_cases_settings(cases: dict[str, object], problem: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(cases=cases)
    assert problem in str(err.value)

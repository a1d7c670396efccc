"""Water-meter detectors for elderly people living alone: pure functions over one meter's
recent readings (oldest first), evaluated at the newest reading; time zone passed in.

- :func:`water_silence`: a meter that reports but shows no use for too long, against a fixed
  limit; :func:`long_silence` sets that limit from the household's usual longest gap at this time
  of day (``models.water_baselines``), :func:`late_morning` checks the first use of the day
  against the household's usual time, and :func:`silence_rules` gives the one decision of both
  (kind ``water_silence``: one alert, one ticket per silence);
- :func:`water_running`: a meter whose flow never stops (every interval above a minimum);
- :func:`slow_decline`: several days in a row far below the household's usual daily use.

A meter that stops reporting is a device fault, never "no water used": a hole in the readings
longer than the allowed gap restarts the silence clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from models.decisions import Decision, duration_text
from models.water_baselines import WaterBaseline, WaterConfig

SEVERITY_ORDER = ("low", "medium", "high", "critical")


def water_silence(
    times: Sequence[datetime],
    volume_l: Sequence[float],
    silence: timedelta,
    tz: ZoneInfo,
    *,
    min_use_l: float = 0.5,
    max_report_gap: timedelta | None = None,
    usual: str = "the meter is reporting normally",
    ratios: tuple[float, float] = (1.5, 2.0),
) -> Decision | None:
    """Raise when the meter keeps reporting but no water was used for ``silence`` or longer.

    Severity grows with the gap: medium from ``silence``, high from ``ratios[0]`` times it,
    critical from ``ratios[1]`` times. The readings must cover the gap: with no use anywhere in
    them the message says "over". With ``max_report_gap``, the gap is only counted from the end
    of the last hole in the readings longer than that. ``usual`` ends the sentence.
    """
    start = _silence_start(times, volume_l, min_use_l, max_report_gap)
    if start is None:
        return None
    now = times[-1]
    since, used = start
    if used and since == now:
        return Decision("water_silence", "clear", now,
                        message=f"water used again at {now.astimezone(tz):%H:%M}")
    gap = now - since
    if gap < silence:
        return None
    ratio = gap / silence
    severity = ("critical" if ratio >= ratios[1] else "high" if ratio >= ratios[0]
                else "medium")
    if used:
        message = (f"No water used since {since.astimezone(tz):%H:%M} ({duration_text(gap)}); "
                   f"{usual}")
    else:
        message = f"No water used for over {duration_text(gap)}; {usual}"
    return Decision("water_silence", "raise", now, severity, message,
                    {"last_use": since.isoformat() if used else None,
                     "gap_minutes": int(gap.total_seconds() // 60),
                     "limit_minutes": int(silence.total_seconds() // 60)})


def _silence_start(
    times: Sequence[datetime], volume_l: Sequence[float], min_use_l: float,
    max_report_gap: timedelta | None,
) -> tuple[datetime, bool] | None:
    """Where the current silence starts (the last use, or the first reading the meter made
    after its last hole, or the first reading) and whether that is a use; None without readings."""
    if not times:
        return None
    for i in range(len(times) - 1, -1, -1):
        if volume_l[i] >= min_use_l:
            return times[i], True
        if max_report_gap is not None and i > 0 and times[i] - times[i - 1] > max_report_gap:
            return times[i], False
    return times[0], False


def _local_hhmm(minutes: float) -> str:
    whole = round(minutes)
    return f"{whole // 60 % 24:02d}:{whole % 60:02d}"


def long_silence(
    times: Sequence[datetime], volume_l: Sequence[float], baseline: WaterBaseline,
    cfg: WaterConfig, tz: ZoneInfo,
) -> Decision | None:
    """A gap without water longer than the household's usual longest gap at this time of day
    (times ``silence_factor``, plus ``silence_margin_h``, between the floor and the cap)."""
    if not times:
        return None
    limit_h = baseline.silence_limit_h(times[-1].astimezone(tz).hour, cfg)
    decision = water_silence(
        times, volume_l, timedelta(hours=limit_h), tz, min_use_l=cfg.use_min_l,
        max_report_gap=timedelta(hours=cfg.max_report_gap_h),
        usual=f"usually never more than {duration_text(timedelta(hours=limit_h))}"
              " without water at this time of day",
        ratios=(cfg.severity_high_ratio, cfg.severity_critical_ratio),
    )
    if decision is None or decision.action == "clear":
        return decision
    return Decision(decision.kind, "raise", decision.observed_at, decision.severity,
                    decision.message,
                    {**decision.details, "rule": "long_silence", "baseline": baseline.source})


def late_morning(
    times: Sequence[datetime], volume_l: Sequence[float], baseline: WaterBaseline,
    cfg: WaterConfig, tz: ZoneInfo,
) -> Decision | None:
    """No first use today by the household's usual time plus ``late_margin_min``.

    Reads: "No water used since 21:40 (12 h 50 min); usually first used by 07:10". Medium
    severity; high once the gap is ``severity_high_ratio`` times the night's usual silence.
    """
    if not times:
        return None
    now = times[-1]
    deadline = baseline.late_deadline_min(cfg)
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if deadline is None or minute < deadline:
        return None
    start = _silence_start(times, volume_l, cfg.use_min_l,
                           timedelta(hours=cfg.max_report_gap_h))
    assert start is not None
    since, used = start
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        hours=cfg.day_start_h)
    if since.astimezone(tz) > day_start or (used and since == now):
        return None  # used this morning, or the meter has not reported all morning
    gap = now - since
    usual_night = timedelta(hours=baseline.silence_limit_h(local.hour, cfg))
    severity = "high" if gap >= usual_night * cfg.severity_high_ratio else "medium"
    first = _local_hhmm(baseline.first_use_min)
    if used:
        message = (f"No water used since {since.astimezone(tz):%H:%M} ({duration_text(gap)});"
                   f" usually first used by {first}")
    else:
        message = f"No water used for over {duration_text(gap)}; usually first used by {first}"
    return Decision("water_silence", "raise", now, severity, message,
                    {"rule": "late_morning", "baseline": baseline.source,
                     "last_use": since.isoformat() if used else None,
                     "gap_minutes": int(gap.total_seconds() // 60),
                     "usual_first_use": first})


def silence_rules(
    times: Sequence[datetime], volume_l: Sequence[float], baseline: WaterBaseline,
    cfg: WaterConfig, tz: ZoneInfo,
) -> Decision | None:
    """One ``water_silence`` decision from the late-morning and long-silence rules: the more
    severe raise (the late morning's sentence on a tie), else the clear when water is used."""
    late = late_morning(times, volume_l, baseline, cfg, tz)
    long = long_silence(times, volume_l, baseline, cfg, tz)
    raised = [d for d in (late, long) if d is not None and d.action == "raise"]
    if raised:
        return max(raised, key=lambda d: SEVERITY_ORDER.index(d.severity))
    return long


def water_running(
    times: Sequence[datetime],
    volume_l: Sequence[float],
    limit: timedelta,
    tz: ZoneInfo,
    *,
    min_flow_l: float = 1.0,
    night: tuple[int, int] = (22, 6),
) -> Decision | None:
    """Raise when every reading for ``limit`` or longer shows flow (a tap left running).

    More urgent at night (local hours ``night[0]`` to ``night[1]``).
    """
    if not times:
        return None
    now = times[-1]
    if volume_l[-1] < min_flow_l:
        return Decision("water_running", "clear", now,
                        message=f"flow stopped at {now.astimezone(tz):%H:%M}")
    start = now
    run: list[float] = []
    for t, v in zip(reversed(times), reversed(volume_l), strict=True):
        if v < min_flow_l:
            break
        start = t
        run.append(v)
    # a reading covers the interval before it: the run began one interval before its first reading
    interval = (times[-1] - times[-2]) if len(times) >= 2 else timedelta(0)
    span = now - start + interval
    if span < limit:
        return None
    hour = now.astimezone(tz).hour
    at_night = hour >= night[0] or hour < night[1]
    severity = "high" if at_night else "medium"
    per = sum(run) / len(run)
    began = (start - interval).astimezone(tz)
    message = (f"Water running without a break for {duration_text(span)} (since {began:%H:%M}),"
               f" about {per:.0f} L every {duration_text(interval) or 'interval'}")
    return Decision("water_running", "raise", now, severity, message,
                    {"running_minutes": int(span.total_seconds() // 60),
                     "mean_l_per_reading": round(per, 1), "at_night": at_night})


def slow_decline(
    daily_l: Sequence[tuple[date, float]], baseline: WaterBaseline, cfg: WaterConfig,
    now: datetime,
) -> Decision | None:
    """The last ``decline_days`` full days (before today) each used under ``decline_fraction``
    of the household's usual daily litres: a welfare visit within days (low severity).

    Only against the household's own baseline (never the population's). A day with no water at
    all is left to the silence rules. Clears when the latest day is back above the fraction.
    """
    if baseline.source != "household" or not daily_l:
        return None
    days = sorted(daily_l)[-cfg.decline_days:]
    limit = baseline.daily_l * cfg.decline_fraction
    if days[-1][1] >= limit:
        return Decision("water_decline", "clear", now,
                        message=f"water use back to {days[-1][1]:.0f} L on {days[-1][0]:%d %b}")
    consecutive = (len(days) == cfg.decline_days
                   and (days[-1][0] - days[0][0]).days == cfg.decline_days - 1)
    if not consecutive or not all(0 < litres < limit for _, litres in days):
        return None
    mean = sum(v for _, v in days) / len(days)
    message = (f"Water use low for {len(days)} days: about {mean:.0f} L a day against a usual "
               f"{baseline.daily_l:.0f} L; a welfare visit in the next days")
    return Decision("water_decline", "raise", now, "low", message,
                    {"rule": "slow_decline", "days": [d.isoformat() for d, _ in days],
                     "litres": [round(v, 1) for _, v in days], "usual_l": baseline.daily_l,
                     "fraction": round(mean / baseline.daily_l, 2) if baseline.daily_l else None})


def running_min_l(min_l_per_15min: float, times: Sequence[datetime]) -> float:
    """Litres per reading that count as flow, scaled from litres per 15 minutes to the meter's
    reporting interval (the median spacing of its readings)."""
    if len(times) < 2:
        return min_l_per_15min
    spacing = sorted((b - a).total_seconds() for a, b in pairwise(times))
    return min_l_per_15min * max(spacing[len(spacing) // 2], 1.0) / 900.0

"""Water-meter detectors for elderly people living alone: pure functions over one meter's
recent readings (oldest first), evaluated at the newest reading; time zone passed in.

- a meter that reports but shows no use for too long (a silent morning);
- a meter whose flow never stops (every interval above a minimum for hours).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from models.decisions import Decision, duration_text


def water_silence(
    times: Sequence[datetime],
    volume_l: Sequence[float],
    silence: timedelta,
    tz: ZoneInfo,
    *,
    min_use_l: float = 0.5,
) -> Decision | None:
    """Raise when the meter keeps reporting but no water was used for ``silence`` or longer.

    Severity grows with the gap: medium from ``silence``, high from 1.5x, critical from 2x.
    The readings must cover the gap: with no use anywhere in them the message says "over".
    """
    if not times:
        return None
    now = times[-1]
    uses = [t for t, v in zip(times, volume_l, strict=True) if v >= min_use_l]
    if uses and uses[-1] == now:
        return Decision("water_silence", "clear", now,
                        message=f"water used again at {now.astimezone(tz):%H:%M}")
    since = uses[-1] if uses else times[0]
    gap = now - since
    if gap < silence:
        return None
    ratio = gap / silence
    severity = "critical" if ratio >= 2 else "high" if ratio >= 1.5 else "medium"
    if uses:
        message = (f"No water used since {since.astimezone(tz):%H:%M} ({duration_text(gap)}); "
                   f"the meter is reporting normally")
    else:
        message = f"No water used for over {duration_text(gap)}; the meter is reporting normally"
    return Decision("water_silence", "raise", now, severity, message,
                    {"last_use": since.isoformat() if uses else None,
                     "gap_minutes": int(gap.total_seconds() // 60)})


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

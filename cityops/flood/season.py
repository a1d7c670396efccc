"""The flood season's inspections (docs/cases.md, "Flood season").

- **Inspections**: from ``flood_season.inspection_lead_days`` before the season starts until it
  ends, :func:`create_inspections` files one case per underpass, low road and basement and season
  (source ``scheduled``, category C0206), accepted and registered by the system and dispatched by
  grid like any case. It never files two for one site and season: each site's season is claimed
  in ``job_claims`` in the transaction that files the case (concurrent runs wait for each other),
  and a case of that season already filed for the site (by hand, say) counts too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg

from cityops.cases.clock import CaseClock
from cityops.cases.opening import advance
from cityops.cases.policy import Origin, plan_case
from cityops.cases.tickets import Actor, NewCase, create_case
from cityops.org.grids import GridIndex, load_grid_index
from cityops.platform.settings import FloodSeasonSettings, Settings
from cityops.platform.topics import Topics

INSPECTED_KINDS = ("underpass", "low_road", "basement")
INSPECTION_CATEGORY = "C0206"  # Flood-season inspection of a key site
CHECKS = {
    "underpass": "the pumps start and run, gullies and grates are clear, the depth gauge reads,"
                 " warning lights, signs and barrier gates work",
    "low_road": "gullies and grates are clear, drains run free, warning signs and diversion"
                " barriers are in place",
    "basement": "the flood gate or sandbags are ready at the ramp, the sump pump runs, the"
                " manager knows whom to call",
}


def _month_day(year: int, month_day: str) -> date:
    month, day = (int(x) for x in month_day.split("-"))
    if (month, day) == (2, 29):
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, month, day)


def season_dates(year: int, settings: FloodSeasonSettings) -> tuple[date, date]:
    """First and last day of the year's flood season (local dates)."""
    return _month_day(year, settings.season_start), _month_day(year, settings.season_end)


def inspection_season(day: date, settings: FloodSeasonSettings) -> int | None:
    """The season (its year) whose inspections are due on local date ``day``: from the lead days
    before the season's first day to its last day; None outside that."""
    start, end = season_dates(day.year, settings)
    if start - timedelta(days=settings.inspection_lead_days) <= day <= end:
        return day.year
    return None


def _claim(conn: psycopg.Connection[Any], site_id: str, season: datetime) -> bool:
    row = conn.execute(
        "INSERT INTO job_claims (job, period, claimed_by) VALUES (%s, %s, 'flood_season')"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (f"flood-inspection:{site_id}", season),
    ).fetchone()
    return row is not None


def inspection_title(year: int, site_name: str) -> str:
    return f"Flood-season inspection {year}: {site_name}"


def create_inspections(
    conn: psycopg.Connection[Any],
    now: datetime,
    settings: Settings,
    *,
    topics: Topics | None = None,
    index: GridIndex | None = None,
    clock: CaseClock | None = None,
) -> list[int]:
    """File the inspection cases due at ``now`` (see the module docstring); return their ids.

    Each site is one transaction: claim its season, file the case, accept and register it
    (system), and dispatch it by grid as the alert→case policy plans an inspection
    (:func:`cityops.cases.opening.advance`; ``index`` and
    ``clock`` are loaded when not given). A case nobody can take stays registered with the reason.
    """
    fs = settings.flood_season
    tz = settings.tz
    year = inspection_season(now.astimezone(tz).date(), fs)
    if year is None:
        return []
    start, end = season_dates(year, fs)
    season = datetime.combine(start, time(), tz)
    sites = conn.execute(
        "SELECT id, kind, name, grid_code, lon, lat, notes FROM key_sites WHERE kind = ANY(%s)"
        " ORDER BY id",
        (list(INSPECTED_KINDS),),
    ).fetchall()
    if not sites:
        return []
    if index is None:
        index = load_grid_index(conn)
    clock = clock or CaseClock.from_settings(settings)
    topics = topics or Topics(settings.topic_prefix)
    unit = clock.catalogue.get(INSPECTION_CATEGORY).unit
    plan = plan_case(Origin("scheduled", category=INSPECTION_CATEGORY), clock.catalogue)
    system = Actor.system()
    created: list[int] = []
    for site in sites:
        title = inspection_title(year, site["name"])
        with conn.transaction():
            if not _claim(conn, site["id"], season):
                continue
            filed = conn.execute(
                "SELECT 1 FROM tickets WHERE key_site_id = %s AND category = %s AND title = %s",
                (site["id"], INSPECTION_CATEGORY, title),
            ).fetchone()
            if filed:
                continue
            notes = f" ({site['notes']})" if site["notes"] else ""
            case = NewCase(
                source="scheduled", category=INSPECTION_CATEGORY, title=title,
                description=(
                    f"Before the flood season ({start:%d %b} to {end:%d %b %Y}) inspect"
                    f" {site['name']}{notes}: {CHECKS[site['kind']]}. Report what is broken"
                    " as a separate case."
                ),
                priority=plan.priority, lon=site["lon"], lat=site["lat"],
                grid_code=site["grid_code"], address=site["name"], key_site_id=site["id"],
                unit=unit, dispatch_due_at=clock.dispatch_due(now, plan.urgent),
            )
            ticket_id = create_case(conn, case, system)
            advance(conn, ticket_id, plan, system, note=f"flood season {year}: inspection",
                    clock=clock, topics=topics, at=now, index=index)
            created.append(ticket_id)
    return created

"""Filing a case from a person: the one path of citizens (Open311), 12345 hotline operators and
grid workers on patrol (docs/cases.md, "Duplicate reports"). Sensor cases come from alerts
(:func:`cityops.cases.opening.open_for_alert`), not from here; what each source's case becomes is
the alert→case policy's (:mod:`cityops.cases.policy`).

Use::

    clock = CaseClock.from_settings(settings)          # once per process
    index = load_grid_index(conn)                      # once per process (cityops.org.grids)
    with pool.connection() as conn:                    # one transaction
        intake = file_case(conn, NewCase(source="hotline", category="C0203", title=...,
                                         description=..., lon=..., lat=..., call_type="report",
                                         reported_by="op7", reporter_phone=...),
                           Actor("op7", "hotline"), settings=settings, index=index, clock=clock,
                           photos=[Photo(data, "image/jpeg")])
    intake.ticket_id, intake.status, intake.duplicate_of, intake.assignment

What :func:`file_case` does, in the caller's transaction:

1. checks the case and lists every problem at once (:class:`IntakeError`, each problem naming the
   field of :class:`~cityops.cases.tickets.NewCase` to fix): the source, the category (it must be in
   the catalogue), the location (a point inside a grid cell; a case without a point needs a
   ``grid_code`` or an ``address``), the photos (JPEG, PNG or WebP by their bytes, at most 5 MB);
2. fills in what the policy (:func:`cityops.cases.policy.plan_case`) and the category decide: the
   responsible ``unit``, priority ``urgent`` for an urgent category (else the case's own
   priority), the cell containing the point (``grid_code``), and the dispatch limit
   ``dispatch_due_at`` (accept + register + dispatch, :class:`CaseClock`);
3. creates the case in state ``reported`` and stores its photos (uploaded by the actor);
4. links duplicates: when an open case (not voided, closed or evaluated; not itself a duplicate)
   of the same category lies within ``settings.cases.duplicate_radius_m`` metres and was reported
   within ``duplicate_hours`` hours, the new case gets ``duplicate_of`` = that case, both get an
   event of kind ``link``, and the new one is voided ("duplicate of case #N"): it is never
   dispatched twice. The nearest such case wins (ties: the oldest). Distances are great-circle
   distances on the Earth's mean-radius sphere (haversine,
   :func:`cityops.org.geo.distance_m`), after a bounding-box pre-filter in SQL. A
   transaction-level advisory lock per category makes two reports of one thing filed at the same
   moment see each other;
5. otherwise moves the case on as the policy plans it by its source (GB/T 30428: the centre
   accepts citizen reports; :func:`cityops.cases.opening.advance`):

   ==========  ================================================================================
   source      after intake
   ==========  ================================================================================
   citizen     stays ``reported``: the operations centre accepts (or voids) it
   hotline     accepted and registered by the operator filing it (role ``hotline``), dispatched
   patrol      accepted and registered by the system, dispatched
   scheduled   accepted and registered by the system, dispatched
   ==========  ================================================================================

   Dispatch is :func:`cityops.cases.assignment.assign_ticket` (grid cell, roster, urgent to the
   nearest worker); when nobody is available the case stays ``registered`` with the reason.
   A case dealt with while it is filed (``closing_note``: a patrol worker fixed it on the spot,
   with ``NewCase.fixed_on_spot`` and ``reported_by`` = the worker; a hotline operator answered a
   consultation) is closed at once instead (``reported -> closed``), without duplicate linking
   or dispatch.

:func:`file_case` returns :class:`Intake`: the case id, the case it duplicates (or None), its
status after intake and the dispatch :class:`~cityops.cases.assignment.Assignment` (or None). It
commits nothing: the caller's transaction does. The dispatch outbox row is sent by the notifier
after the commit, as for every dispatch.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from cityops.cases import tickets
from cityops.cases.assignment import Assignment
from cityops.cases.clock import CaseClock
from cityops.cases.opening import advance
from cityops.cases.photos import Photo, check_photo, image_type
from cityops.cases.policy import Origin, plan_case
from cityops.cases.tickets import Actor, NewCase, record_event, transition
from cityops.org.geo import degrees_around, distance_m
from cityops.org.grids import GridIndex, load_grid_index
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics

# Sources that file through here (sensor cases come from alerts).
INTAKE_SOURCES = ("citizen", "hotline", "patrol", "scheduled")
INDEX_MAX_AGE_S = 300.0


@dataclass(frozen=True)
class Intake:
    """What became of a filed case."""

    ticket_id: int
    duplicate_of: int | None   # the open case this one duplicates (then status is voided)
    status: str                # reported, registered, dispatched, voided or closed
    assignment: Assignment | None  # when dispatch was tried
    photo_ids: tuple[int, ...] = ()


class IntakeError(ValueError):
    """A case that cannot be filed; ``problems`` lists (field, reason) for every one."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in self.problems))


def check_case(
    case: NewCase, *, clock: CaseClock, index: GridIndex, photos: Sequence[Photo] = ()
) -> list[tuple[str, str]]:
    """Every problem of a case to be filed, as (NewCase field or ``photos``, reason)."""
    problems: list[tuple[str, str]] = []
    if case.source not in INTAKE_SOURCES:
        problems.append(("source", f"a case from {case.source!r} is not filed here; sources:"
                                   f" {', '.join(INTAKE_SOURCES)} (sensor cases come from alerts)"))
    try:
        clock.catalogue.get(case.category)
    except ValueError as exc:
        problems.append(("category", str(exc)))
    if not case.title.strip():
        problems.append(("title", "say in a few words what the case is"))
    if (case.lon is None) != (case.lat is None):
        problems.append(("lon" if case.lon is None else "lat",
                         "give both longitude and latitude, or neither"))
    elif case.lon is not None and case.lat is not None:
        if not (math.isfinite(case.lon) and -180 <= case.lon <= 180):
            problems.append(("lon", f"longitude {case.lon} is not between -180 and 180"))
        elif not (math.isfinite(case.lat) and -90 <= case.lat <= 90):
            problems.append(("lat", f"latitude {case.lat} is not between -90 and 90"))
        elif index.locate(case.lon, case.lat) is None:
            problems.append(("lon", f"the point ({case.lat:.6f}, {case.lon:.6f}) is outside"
                                    " every grid cell of the district"))
    elif case.grid_code is None and not (case.address or "").strip():
        problems.append(("lon", "say where: a point (longitude and latitude), a grid cell or an"
                                " address"))
    if case.grid_code is not None and case.grid_code not in index.cells:
        problems.append(("grid_code", f"there is no grid cell {case.grid_code}"))
    for number, photo in enumerate(photos, 1):
        checked, reason = check_photo(photo.data)
        if checked is None:
            problems.append(("photos", f"photo {number}: {reason}"))
    return problems


def file_case(
    conn: psycopg.Connection[Any],
    case: NewCase,
    actor: Actor,
    *,
    settings: Settings,
    index: GridIndex,
    clock: CaseClock,
    photos: Sequence[Photo] = (),
    closing_note: str | None = None,
    now: datetime | None = None,
) -> Intake:
    """File a case from a person (see the module docstring); raise :class:`IntakeError` listing
    every problem, or :class:`~cityops.cases.tickets.TransitionError` when the actor may not make a
    move intake needs (e.g. closing at once)."""
    at = now or datetime.now(UTC)
    problems = check_case(case, clock=clock, index=index, photos=photos)
    if problems:
        raise IntakeError(problems)
    plan = plan_case(Origin(case.source, category=case.category,  # type: ignore[arg-type]
                            priority=case.priority), clock.catalogue)
    cell = case.grid_code
    if case.lon is not None and case.lat is not None:
        cell = index.locate(case.lon, case.lat)
    case = replace(
        case, priority=plan.priority, grid_code=cell,
        unit=clock.catalogue.get(case.category).unit,
        dispatch_due_at=clock.dispatch_due(at, plan.urgent),
    )
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cityops.intake:{case.category}",))
    ticket_id = tickets.create_case(conn, case, actor)
    photo_ids = tuple(  # the type by the bytes (checked above), not as claimed
        tickets.add_photo(conn, ticket_id, p.data, image_type(p.data) or p.content_type,
                          actor.name)
        for p in photos
    )
    if photo_ids:
        record_event(conn, ticket_id, actor.name, "reported", "reported",
                     f"{len(photo_ids)} photo{'s' if len(photo_ids) > 1 else ''} filed with the"
                     " report", kind="note", role=actor.role, photos=photo_ids)

    if closing_note is not None or case.fixed_on_spot:
        note = (closing_note or "").strip() or "fixed on the spot"
        tickets.transition(conn, ticket_id, "closed", actor, note)
        return Intake(ticket_id, None, "closed", None, photo_ids)

    original = find_duplicate(conn, case, ticket_id, settings=settings, now=at)
    if original is not None:
        _link_duplicate(conn, ticket_id, original, actor)
        return Intake(ticket_id, original, "voided", None, photo_ids)

    status, sent = advance(conn, ticket_id, plan, actor, note=f"filed by {actor.name}",
                           clock=clock, topics=Topics(settings.topic_prefix), at=at, index=index)
    return Intake(ticket_id, None, status, sent, photo_ids)


def find_duplicate(
    conn: psycopg.Connection[Any],
    case: NewCase,
    ticket_id: int | None = None,
    *,
    settings: Settings,
    now: datetime,
) -> int | None:
    """The open case a new ``case`` (id ``ticket_id``, left out) duplicates, or None: the same
    category, not itself a duplicate, reported within ``cases.duplicate_hours`` before ``now``
    and at most ``cases.duplicate_radius_m`` metres away (haversine); the nearest, then the
    oldest. A case without a point has no duplicates."""
    if case.lon is None or case.lat is None:
        return None
    radius = settings.cases.duplicate_radius_m
    dlon, dlat = degrees_around(case.lat, radius)
    rows = conn.execute(
        """
        SELECT id, lon, lat FROM tickets
        WHERE category = %(category)s AND status NOT IN ('voided', 'closed', 'evaluated')
          AND duplicate_of IS NULL AND id <> %(id)s AND created_at >= %(since)s
          AND lat BETWEEN %(lat)s - %(dlat)s AND %(lat)s + %(dlat)s
          AND lon BETWEEN %(lon)s - %(dlon)s AND %(lon)s + %(dlon)s
        ORDER BY created_at, id
        """,
        {"category": case.category, "id": ticket_id or 0,
         "since": now - timedelta(hours=settings.cases.duplicate_hours),
         "lat": case.lat, "lon": case.lon, "dlat": dlat, "dlon": dlon},
    ).fetchall()
    best: tuple[float, int] | None = None
    for row in rows:
        metres = distance_m(case.lon, case.lat, row["lon"], row["lat"])
        if metres <= radius and (best is None or metres < best[0]):
            best = (metres, int(row["id"]))
    return None if best is None else best[1]


def _link_duplicate(
    conn: psycopg.Connection[Any], ticket_id: int, original: int, actor: Actor
) -> None:
    conn.execute("UPDATE tickets SET duplicate_of = %s WHERE id = %s", (original, ticket_id))
    row = conn.execute("SELECT status FROM tickets WHERE id = %s", (original,)).fetchone()
    assert row is not None
    record_event(conn, original, "system", row["status"], row["status"],
                 f"case #{ticket_id} reported the same thing: linked as its duplicate",
                 kind="link", role="system")
    record_event(conn, ticket_id, "system", "reported", "reported",
                 f"duplicate of case #{original}", kind="link", role="system")
    _void_duplicate(conn, ticket_id, f"duplicate of case #{original}")


def _void_duplicate(conn: psycopg.Connection[Any], ticket_id: int, note: str) -> None:
    """Void the new case as a duplicate, as the system."""
    transition(conn, ticket_id, "voided", Actor.system(), note)



class IntakeDesk:
    """Where one process files cases from people (the hotline and patrol pages, Open311): the
    categories and the calendar loaded once, the grid cells re-read every
    :data:`INDEX_MAX_AGE_S` seconds (a centre may load new cells), each filing one transaction.
    Safe to share between threads."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self.clock = CaseClock.from_settings(settings)
        self._index: GridIndex | None = None
        self._index_at = 0.0
        self._lock = threading.Lock()

    def index(self) -> GridIndex:
        """The district's grid cells (possibly none: no district loaded)."""
        with self._lock:
            if self._index is None or time.monotonic() - self._index_at > INDEX_MAX_AGE_S:
                with self._db.transaction() as conn:
                    self._index = load_grid_index(conn)
                self._index_at = time.monotonic()
            return self._index

    def file(self, case: NewCase, actor: Actor, *, photos: Sequence[Photo] = (),
             closing_note: str | None = None, now: datetime | None = None) -> Intake:
        """:func:`file_case` in a transaction of its own (the dispatch is sent after it)."""
        index = self.index()
        with self._db.transaction() as conn:
            return file_case(conn, case, actor, settings=self._settings, index=index,
                             clock=self.clock, photos=photos, closing_note=closing_note,
                             now=now)

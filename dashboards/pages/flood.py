"""Flood events ``/flood`` and the report of one ``/flood/<id or time>`` (operations, admin).

The list shows the flood events of the last year, newest first. A report (by the event's id, the
id of its first alert, or by any ISO 8601 time inside it) gives the timeline (first alert, levels
crossed, peaks, cases opened / dispatched / signed for / handled, alerts resolved), the peak level
of each gauge, and the event's cases with their response times from dispatch to signed for and
to handled (median and maximum). Data from :mod:`cityops.flood.events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html
from dash.development.base_component import Component

from cityops.flood import events as flood_events
from cityops.platform.text import duration_text
from dashboards.components import STATUS_LABELS, badge, header, table
from dashboards.context import AppContext, Page
from dashboards.users import require_role

ROLES = ("operations", "admin")
LIST_DAYS = 365


def _when(value: datetime | None, tz: ZoneInfo, day: datetime | None = None) -> str:
    """Local time; just the clock when on ``day``'s date."""
    if value is None:
        return "—"
    local = value.astimezone(tz)
    if day is not None and local.date() == day.astimezone(tz).date():
        return f"{local:%H:%M}"
    return f"{local:%d %b %Y %H:%M}"


def _dur(seconds: float | None) -> str:
    return "—" if seconds is None else duration_text(seconds)


def _span(event: Mapping[str, Any], tz: ZoneInfo) -> str:
    start = event["start"].astimezone(tz)
    if event["end"] is None:
        return f"{start:%d %b %Y %H:%M} – going on"
    end = event["end"].astimezone(tz)
    fmt = "%H:%M" if end.date() == start.date() else "%d %b %Y %H:%M"
    return f"{start:%d %b %Y %H:%M} – {end:{fmt}}"


def _tile(label: str, value: str, detail: str = "") -> html.Div:
    return html.Div([html.Div(label, className="tile-label"),
                     html.Div(value, className="tile-value"),
                     html.Div(detail, className="tile-details")], className="tile")


def _status(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " "))


def list_view(events: list[dict[str, Any]], tz: ZoneInfo) -> Component:
    """The events, newest first."""
    rows = []
    for e in reversed(events):
        r = e["response"]
        rows.append([
            dcc.Link(_span(e, tz), href=f"/flood/{e['id']}"),
            _dur(e["duration_s"]),
            str(len(e["gauges"])),
            "—" if e["peak_mm"] is None else f"{e['peak_mm']:.0f} mm",
            str(len(e["cases"])),
            f"{_dur(r['sign']['median_s'])} / {_dur(r['sign']['max_s'])}",
            f"{_dur(r['handle']['median_s'])} / {_dur(r['handle']['max_s'])}",
        ])
    return table(["Event", "Duration", "Gauges", "Peak", "Cases",
                  "Sign for: median / max", "Handled: median / max"], rows,
                 class_name="flood-events")


def report_view(event: Mapping[str, Any], tz: ZoneInfo) -> list[Component]:
    """The report of one event (response times count from the dispatch)."""
    return [
        figures_view(event),
        html.Div([
            html.Section([html.H2("Peak levels"), gauges_view(event, tz)], className="panel"),
            html.Section([html.H2("Timeline"), timeline_view(event, tz)], className="panel"),
        ], className="flood-two"),
        html.Section([html.H2("Cases and response times"), cases_view(event, tz)],
                     className="panel", id="fl-cases"),
    ]


def figures_view(event: Mapping[str, Any]) -> Component:
    """The event's figures: duration, gauges, peak, cases and the response times."""
    r = event["response"]
    return html.Div([
        _tile("Duration", _dur(event["duration_s"]),
              "going on" if event["active"] else "ended"),
        _tile("Gauges", str(len(event["gauges"])), f"{len(event['alerts'])} alerts"),
        _tile("Peak", "—" if event["peak_mm"] is None else f"{event['peak_mm']:.0f} mm",
              event["gauges"][0]["label"] if event["gauges"] else ""),
        _tile("Cases", str(len(event["cases"])),
              f"{sum(c['open'] for c in event['cases'])} still open"),
        _tile("Signed for after", f"{_dur(r['sign']['median_s'])}",
              f"median of {r['sign']['n']} from dispatch; max {_dur(r['sign']['max_s'])}"),
        _tile("Handled after", f"{_dur(r['handle']['median_s'])}",
              f"median of {r['handle']['n']} from dispatch; max {_dur(r['handle']['max_s'])}"),
    ], className="flood-figures", id="fl-figures")


def timeline_view(event: Mapping[str, Any], tz: ZoneInfo) -> Component:
    """What happened, in order."""
    day = event["start"]
    return html.Ol(
        [html.Li([html.Span(_when(t["at"], tz, day), className="time"),
                  html.Span(t["text"], className="what")], className=f"tl-{t['kind']}")
         for t in event["timeline"]],
        className="flood-timeline", id="fl-timeline",
    )


def gauges_view(event: Mapping[str, Any], tz: ZoneInfo) -> Component:
    """Each gauge's peak and the levels it crossed."""
    day = event["start"]
    return table(
        ["Gauge", "Cell", "Peak", "At", "Level reached", "Levels crossed"],
        [[g["label"], g["cell"] or "—",
          "—" if g["peak_mm"] is None else f"{g['peak_mm']:.0f} mm",
          _when(g["peak_at"], tz, day),
          g["peak_level"],
          ", ".join(f"L{c['level']} {_when(c['at'], tz, day)}" for c in g["crossed"])
          or "—"] for g in event["gauges"]],
        class_name="flood-gauges-table",
    )


def cases_view(event: Mapping[str, Any], tz: ZoneInfo) -> Component:
    """The event's cases with their response times."""
    day = event["start"]
    return table(
        ["Case", "Title", "State", "Worker", "Opened", "Dispatched", "Signed for (after)",
         "Handled (after)"],
        [[dcc.Link(f"#{c['id']}", href=f"/tickets/{c['id']}"), c["title"],
          badge(_status(c["status"]), f"st-{c['status']}"), c["worker"] or "—",
          _when(c["created_at"], tz, day), _when(c["dispatched_at"], tz, day),
          f"{_when(c['signed_at'], tz, day)} ({_dur(c['sign_s'])})" if c["signed_at"] else "—",
          f"{_when(c['handled_at'], tz, day)} ({_dur(c['handle_s'])})" if c["handled_at"]
          else "—"]
         for c in event["cases"]],
        class_name="flood-cases-table",
    )


def layout(ctx: AppContext, key: str | None = None) -> Component:
    """The list of events, or one event's report."""
    user = require_role(*ROLES)
    now = ctx.now()
    tz = ctx.tz
    if key is None:
        events = flood_events.read_events(ctx.db, now - timedelta(days=LIST_DAYS), now)
        body: list[Component] = [
            html.Section([html.H2(f"Flood events of the last {LIST_DAYS} days"),
                          list_view(events, tz)], className="panel")]
        title = "Flood events"
    else:
        event = flood_events.read_event(ctx.db, key, now)
        if event is None:
            body = [html.Section([html.P(f"There is no flood event {key}."),
                                  dcc.Link("All flood events", href="/flood")],
                                 className="panel")]
            title = "Flood event not found"
        else:
            title = f"Flood {_span(event, tz)}"
            body = [dcc.Link("← all flood events", href="/flood"), *report_view(event, tz)]
    return html.Div([header(title, user, "/flood" if key is None else ""), *body],
                    className="page flood-page")


# No callbacks: a report is drawn once.
PAGE = Page(pattern=r"/flood(?:/(?P<key>[0-9A-Za-z:.+_-]+))?", roles=ROLES, layout=layout)

"""The wall screen ``/``: the whole district on one screen, readable from across the room.

Vital signs, the map of communities coloured by open alerts with the alerts as markers, the live
alert feed and the ticket board; it refreshes itself every 5 seconds. It shows no resident's
personal details: its data comes from :mod:`cityops.views.wall`, which never reads households.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dash import Input, Output, Patch, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.views import wall
from dashboards import flood_view, metrics_panel
from dashboards.components import (
    KIND_NAMES,
    STATUS_LABELS,
    alert_markers,
    badge,
    cell_map,
    empty_figure,
    fmt_left,
    fmt_time,
    header,
    updated_label,
)
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.metrics_panel import wall_metrics_panel
from dashboards.users import require_role

ROLES = ("operations", "admin")
REFRESH_MS = 5_000
FEED_ROWS = 5
BOARD_ROWS = 7
MAP_SIZE = (790, 700)  # pixels of the map panel at 1920 x 1080 (below the metrics strip)


def _tile(label: str, value: str, details: list[Component], tile_id: str,
          alarm: bool = False) -> html.Div:
    return html.Div(
        [html.Div(label, className="tile-label"),
         html.Div(value, className="tile-value" + (" alarm" if alarm else ""), id=tile_id),
         html.Div(details, className="tile-details")],
        className="tile",
    )


def vitals_view(v: Mapping[str, Any], ctx: AppContext, now: datetime) -> list[Component]:
    """The row of vital-sign tiles."""
    sensors = [
        html.Span(f"{KIND_NAMES[s['kind']]} {s['online']}/{s['total']}", className="detail")
        for s in v["sensors"]
    ]
    severities = [
        html.Span(f"{n} {sev}", className=f"detail sev-text-{sev}" + ("" if n else " dim"))
        for sev, n in reversed(v["alerts_by_severity"].items())
    ]
    overdue = v["tickets_overdue"]
    tickets = [html.Span(f"{overdue} overdue", className="detail alarm-text" if overdue
                         else "detail dim")]
    if v["latest_reading_at"] is not None:
        latest = f"latest {fmt_time(v['latest_reading_at'], ctx.tz, now, seconds=True)}"
    else:
        latest = f"none this hour; last heard {fmt_time(v['last_heard_at'], ctx.tz, now)}"
    return [
        _tile("Sensors online", f"{v['sensors_online']} / {v['sensors_total']}", sensors,
              "vital-sensors"),
        _tile("Open alerts", str(v["alerts_open"]), severities, "vital-alerts",
              alarm=v["alerts_by_severity"]["critical"] > 0),
        _tile("Open tickets", str(v["tickets_open"]), tickets, "vital-tickets", alarm=overdue > 0),
        _tile("Readings, last hour", f"{v['readings_last_hour']:,}",
              [html.Span(latest, className="detail")], "vital-readings"),
    ]


def feed_view(alerts: list[Mapping[str, Any]], ctx: AppContext, now: datetime) -> list[Component]:
    """The newest open alerts; each links to its ticket when it has one."""
    rows: list[Component] = []
    for a in alerts[:FEED_ROWS]:
        top = html.Div(
            [html.Span(fmt_time(a["last_seen"], ctx.tz, now), className="time"),
             badge(a["severity"], f"sev-{a['severity']}"),
             html.Span(a["cell"] or "outside the district", className="cell"),
             html.Span(f"ticket #{a['ticket_id']}" if a["ticket_id"] else "no ticket",
                       className="ticket-ref")],
            className="feed-top",
        )
        body = [top, html.Div(a["message"], className="feed-message")]
        if a["ticket_id"]:
            rows.append(dcc.Link(body, href=f"/tickets/{a['ticket_id']}", className="feed-row",
                                 id={"type": "feed-alert", "alert": a["id"]}))
        else:
            rows.append(html.Div(body, className="feed-row"))
    if not alerts:
        rows.append(html.Div("No open alerts.", className="empty"))
    elif len(alerts) > FEED_ROWS:
        rows.append(html.Div(f"+ {len(alerts) - FEED_ROWS} more open alerts", className="more"))
    return rows


# The open states of the case workflow, grouped by what the case waits for (readable from afar).
BOARD_GROUPS = (
    ("to dispatch", ("reported", "accepted", "registered", "returned")),
    ("to sign for", ("dispatched",)),
    ("in work", ("signed_for", "in_progress", "postponed", "rework")),
    ("to verify", ("handled",)),
    ("to close", ("verified",)),
)


def board_view(board: Mapping[str, Any], now: datetime) -> list[Component]:
    """Open case counts by what they wait for (the states in each, on hover) and the most
    pressing open cases."""
    spans = []
    for label, states in BOARD_GROUPS:
        n = sum(board["counts"].get(s, 0) for s in states)
        detail = ", ".join(f"{board['counts'].get(s, 0)} {STATUS_LABELS[s].lower()}"
                           for s in states)
        spans.append(html.Span([html.B(str(n)), f" {label}"], title=detail,
                               className="count" + ("" if n else " dim")))
    counts = html.Div(spans, className="board-counts")
    head = html.Div(
        [html.Span(t) for t in ("#", "priority", "status", "cell", "worker", "time left")],
        className="board-row board-head",
    )
    rows: list[Component] = [counts, head]
    for t in board["rows"][:BOARD_ROWS]:
        rows.append(dcc.Link(
            [html.Span(f"#{t['id']}"),
             badge(t["priority"], f"prio-{t['priority']}"),
             html.Span(STATUS_LABELS[t["status"]], className=f"st-text-{t['status']}"),
             html.Span(t["cell"] or "—", className="cell"),
             html.Span(t["worker"] or "unassigned", className="cell"),
             html.Span(fmt_left(t["deadline"], now), className="alarm-text" if t["overdue"]
                       else "")],
            href=f"/tickets/{t['id']}",
            className="board-row" + (" overdue" if t["overdue"] else ""),
            id={"type": "board-ticket", "ticket": t["id"]},
        ))
    if not board["rows"]:
        rows.append(html.Div("No open tickets.", className="empty"))
    elif board["total"] > BOARD_ROWS:
        rows.append(html.Div(f"+ {board['total'] - BOARD_ROWS} more open tickets",
                             className="more"))
    return rows


def layout(ctx: AppContext) -> Component:
    """The wall screen, drawn with current data; the interval keeps it current."""
    user = require_role(*ROLES)
    now = ctx.now()
    screen = wall.read_wall(ctx.db, now, ctx.tz, board_limit=BOARD_ROWS)
    cells, snap, flood = screen["cells"], screen["snapshot"], screen["flood"]
    flood_traces = None
    if cells:
        figure = cell_map(cells, snap["alerts_by_cell"], alert_markers(snap["alerts"]),
                          width=MAP_SIZE[0], height=MAP_SIZE[1])
        flood_traces = flood_view.add_map_layers(figure, flood)
    else:
        figure = empty_figure("No grid cells loaded yet.")
    map_view = dcc.Graph(
        id="wall-map", figure=figure, className="map",
        config={"displayModeBar": False, "scrollZoom": False, "responsive": True},
    )
    return html.Div(
        [
            header("CityOps — District Operations", user, "/",
                   updated=updated_label(now, ctx.tz)),
            html.Div(vitals_view(snap["vitals"], ctx, now), id="wall-vitals", className="vitals"),
            wall_metrics_panel(ctx, now),
            html.Div(
                [
                    html.Section([html.H2(flood_view.map_title(flood["flood"]),
                                          id="wall-map-title"), map_view],
                                 className="panel map-panel"),
                    html.Div(
                        [html.Section([html.H2("Live alerts"),
                                       html.Div(feed_view(snap["alerts"], ctx, now),
                                                id="wall-feed")],
                                      className="panel feed-panel"),
                         html.Section([html.H2("Ticket board"),
                                       html.Div(board_view(snap["board"], now),
                                                id="wall-board")],
                                      className="panel board-panel")],
                        className="side", id="wall-side", style=flood_view.normal_style(flood),
                    ),
                    flood_view.side(flood, ctx.tz, now),
                ],
                className="wall-main",
            ),
            dcc.Store(id="wall-cells", data=[c["code"] for c in cells]),
            flood_view.stores(flood_traces),
            dcc.Interval(id="wall-tick", interval=REFRESH_MS),
        ],
        className="wall",
    )


callbacks = Callbacks()


@callbacks(
    Output("wall-vitals", "children"),
    Output("wall-feed", "children"),
    Output("wall-board", "children"),
    Output("wall-map", "figure"),
    Output("updated", "children", allow_duplicate=True),
    Input("wall-tick", "n_intervals"),
    State("wall-cells", "data"),
    prevent_initial_call=True,
)
def refresh(_tick: int | None, codes: list[str]) -> tuple[Any, ...]:
    """The periodic refresh: vital signs, the feed, the board and the map's colours."""
    require_role(*ROLES)
    ctx = context()
    now = ctx.now()
    snap = wall.read_snapshot(ctx.db, now, board_limit=BOARD_ROWS)
    figure: Any = no_update
    if codes:
        figure = Patch()
        figure["data"][0]["z"] = [snap["alerts_by_cell"].get(code, 0) for code in codes]
        for key, value in alert_markers(snap["alerts"]).items():
            figure["data"][1][key] = value
    return (vitals_view(snap["vitals"], ctx, now), feed_view(snap["alerts"], ctx, now),
            board_view(snap["board"], now), figure, updated_label(now, ctx.tz))


@callbacks(Output("url", "pathname"), Input("wall-map", "clickData"), prevent_initial_call=True)
def open_clicked(click: Mapping[str, Any] | None) -> str:
    """A click on an alert's marker opens its ticket."""
    require_role(*ROLES)
    points = (click or {}).get("points", [])
    ticket_id = points[0].get("customdata") if points else None
    if not isinstance(ticket_id, int):
        raise PreventUpdate
    return f"/tickets/{ticket_id}"


PAGE = Page(pattern="/", roles=ROLES, layout=layout,
            callbacks=(callbacks, flood_view.callbacks, metrics_panel.callbacks))

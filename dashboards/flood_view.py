"""The wall's flood view and the key-sites layer of its map (docs/web.md, "Wall screen").

While a flood event is going on (an unresolved flood alert: ``events.current_flood``) the
wall's right-hand side shows the flood instead of the alert feed and the ticket board: a banner
with how long and how deep, the flooding gauges with depth, level and the cameras within 300 m,
the open flood cases with their state and worker, and the crews on duty in the flooding streets.
The map adds a 300 m ring and the cameras around each flooding gauge. The key sites (shelters,
supply depots, underpasses, low roads, basements) are on the map at all times. The wall switches
back by itself when the last flood alert is resolved.

Markers only, no text on the map (text would make MapLibre fetch glyphs): the legend is HTML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import Input, Output, Patch, State, dcc, html, no_update
from dash.development.base_component import Component

from cityops.org.geo import degrees_around
from cityops.platform.text import duration_text
from cityops.sensing.cameras import NEARBY_M
from cityops.views.wall import read_flood
from dashboards.components import SEVERITY_COLOURS, badge, fmt_time
from dashboards.context import Callbacks, context
from dashboards.users import require_role

ROLES = ("operations", "admin")
GAUGE_ROWS = 3
OTHER_ROWS = 2
CASE_ROWS = 5
CREW_ROWS = 7
SITE_COLOURS = {"shelter": "#51cf66", "depot": "#3bc9db", "underpass": "#b197fc",
                "low_road": "#b197fc", "basement": "#b197fc"}
SITE_SIZES = {"shelter": 13, "depot": 13, "underpass": 9, "low_road": 9, "basement": 9}
CAMERA_COLOUR = "#f8f9fa"
RING_COLOUR = "#ff8787"
HIDDEN = {"display": "none"}
LEGEND = (("Shelter", "shelter"), ("Supply depot", "depot"),
          ("Underpass, low road, basement", "underpass"))


# --- the map ----------------------------------------------------------------------------------

def _ring(lon: float, lat: float, radius_m: float, points: int = 48) -> tuple[list[float],
                                                                              list[float]]:
    dlon, dlat = degrees_around(lat, radius_m)
    angles = [2 * math.pi * i / points for i in range(points + 1)]
    return ([round(lon + dlon * math.cos(a), 6) for a in angles],
            [round(lat + dlat * math.sin(a), 6) for a in angles])


def flood_layers(flood: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scattermap data of the 300 m rings around the flooding gauges and of their cameras."""
    ring_lon: list[float | None] = []
    ring_lat: list[float | None] = []
    cams: dict[str, Mapping[str, Any]] = {}
    hover: dict[str, list[str]] = {}
    for g in (flood or {}).get("gauges", []):
        if not g["flooding"] or g["lon"] is None:
            continue
        lon, lat = _ring(g["lon"], g["lat"], NEARBY_M)
        ring_lon += [*lon, None]
        ring_lat += [*lat, None]
        for c in g["cameras"]:
            cams[c["id"]] = c
            hover.setdefault(c["id"], []).append(f"{c['distance_m']} m from {g['label']}")
    rings = {"lon": ring_lon, "lat": ring_lat}
    cameras = {
        "lon": [c["lon"] for c in cams.values()], "lat": [c["lat"] for c in cams.values()],
        "hovertext": [f"{c['id']} {c['label']}<br>{'<br>'.join(hover[c['id']])}"
                      for c in cams.values()],
    }
    return rings, cameras


def add_map_layers(figure: go.Figure, view: Mapping[str, Any]) -> int:
    """Add the key sites, the rings and the cameras to the wall's map; return the index of the
    rings trace (the cameras trace follows it), for the refresh to patch."""
    sites = view["sites"]
    figure.add_trace(go.Scattermap(
        mode="markers", hoverinfo="text",
        lon=[s["lon"] for s in sites], lat=[s["lat"] for s in sites],
        hovertext=[f"{s['name']}" + (f" ({s['capacity']} places)" if s["capacity"] else "")
                   + f"<br>{s['cell'] or ''}" for s in sites],
        marker={"size": [SITE_SIZES[s["kind"]] for s in sites],
                "color": [SITE_COLOURS[s["kind"]] for s in sites], "opacity": 0.9},
    ))
    rings, cameras = flood_layers(view["flood"])
    figure.add_trace(go.Scattermap(mode="lines", hoverinfo="skip",
                                   line={"color": RING_COLOUR, "width": 2}, **rings))
    figure.add_trace(go.Scattermap(mode="markers", hoverinfo="text",
                                   marker={"size": 10, "color": CAMERA_COLOUR}, **cameras))
    return len(figure.data) - 2


def map_title(flood: Mapping[str, Any] | None) -> list[Component]:
    """The map panel's heading and the legend of the layers."""
    legend = [html.Span([html.Span(className="flood-dot",
                                   style={"background": SITE_COLOURS[kind]}), name],
                        className="flood-legend-item") for name, kind in LEGEND]
    if flood:
        legend += [html.Span([html.Span(className="flood-dot",
                                        style={"background": CAMERA_COLOUR}), "Camera"],
                             className="flood-legend-item"),
                   html.Span([html.Span(className="flood-ring"), "300 m"],
                             className="flood-legend-item")]
        title = "Flood map"
    else:
        title = "Communities by open alerts"
    return [html.Span(title), html.Span(legend, className="flood-legend")]


# --- the side -----------------------------------------------------------------------------------

def _status(status: str) -> str:
    return status.replace("_", " ")


def _gauge_row(g: Mapping[str, Any]) -> html.Div:
    cams = g["cameras"]
    if cams:
        names = " · ".join(f"{c['id']} ({c['distance_m']} m)" for c in cams[:4])
        more = f" + {len(cams) - 4} more" if len(cams) > 4 else ""
        plural = "s" if len(cams) > 1 else ""
        camera_text = f"{len(cams)} camera{plural} within 300 m: {names}{more}"
    else:
        camera_text = "no camera within 300 m"
    rise = g["rise_mm_per_min"]
    # no depth in the alert nor a reading in the event: the alert's own words instead
    depth = [html.B("—")] if g["depth_mm"] is None else [html.B(f"{g['depth_mm']:.0f}"),
                                                         html.Span(" mm")]
    return html.Div(
        [html.Div(depth, className="flood-depth",
                  style={"color": SEVERITY_COLOURS[g["severity"]]}),
         html.Div([html.Div(g["label"], className="flood-name"),
                   html.Div([badge(g["severity"], f"sev-{g['severity']}"),
                             html.Span(g["level"] or g["message"],
                                       className="flood-level flood-ellipsis"),
                             html.Span(f"rising {rise:.0f} mm/min" if rise and rise >= 1 else "",
                                       className="alarm-text"),
                             html.Span(f"peak {g['peak_mm']:.0f} mm" if g["peak_mm"] else "",
                                       className="muted")],
                            className="flood-meta"),
                   html.Div(camera_text, className="flood-cams" + ("" if cams else " dim"))],
                  className="flood-gauge-text")],
        className="flood-gauge", id={"type": "flood-gauge", "device": g["device_id"]},
    )


def _short_cell(name: str | None) -> str:
    """'Huangpi Rd Community 13' -> 'Huangpi Rd 13' (the wall's columns are narrow)."""
    return (name or "—").replace(" Community ", " ")


def _case_row(c: Mapping[str, Any], tz: ZoneInfo, now: datetime) -> dcc.Link:
    return dcc.Link(
        [html.Div([html.Span(f"#{c['id']}", className="flood-case-id"),
                   html.Span(_status(c["status"]), className="flood-state"),
                   html.Span(c["worker"] or "not dispatched", className="flood-ellipsis"
                             + ("" if c["worker"] else " alarm-text")),
                   html.Span(fmt_time(c["created_at"], tz, now), className="flood-case-time")],
                  className="flood-case-top"),
         html.Div(c["title"], className="flood-case-title")],
        href=f"/tickets/{c['id']}", className=f"flood-case flood-prio-{c['priority']}",
        id={"type": "flood-case", "ticket": c["id"]},
    )


def _crew_row(w: Mapping[str, Any]) -> html.Div:
    busy = w["open_tickets"]
    return html.Div(
        [html.Span(w["name"], className="flood-ellipsis"),
         html.Span(_short_cell(w["cell"]), className="flood-ellipsis muted"),
         html.Span(f"{busy} in hand" if busy else "free", className="" if busy else "flood-free")],
        className="flood-crew",
    )


def _more(total: int, shown: int, what: str) -> list[Component]:
    return [html.Div(f"+ {total - shown} more {what}", className="more")] if total > shown else []


def _others(alerts: list[Mapping[str, Any]], tz: ZoneInfo, now: datetime) -> html.Div:
    """One line: the newest open alerts that are not floods (the feed is hidden meanwhile)."""
    items: list[Component] = [html.Span(f"Other open alerts ({len(alerts)})",
                                        className="flood-other-head")]
    for a in alerts[:OTHER_ROWS]:
        body = [html.Span(fmt_time(a["last_seen"], tz, now), className="muted"), " ",
                badge(a["severity"], f"sev-{a['severity']}"), f" {a['message']}"]
        if a["ticket_id"]:
            items.append(dcc.Link(body, href=f"/tickets/{a['ticket_id']}",
                                  className="flood-other-item"))
        else:
            items.append(html.Span(body, className="flood-other-item"))
    if not alerts:
        items.append(html.Span("none", className="muted"))
    return html.Div(items, className="flood-other", id="flood-other")


def side_children(flood: Mapping[str, Any] | None, tz: ZoneInfo, now: datetime,
                  others: list[Mapping[str, Any]] | None = None) -> list[Component]:
    """The flood side: banner, other alerts, flooding gauges, open cases, crews (empty when no
    flood)."""
    if not flood:
        return []
    flooding = [g for g in flood["gauges"] if g["flooding"]]
    drained = len(flood["gauges"]) - len(flooding)
    streets = ", ".join(s["name"].removesuffix(" Street Centre") for s in flood["streets"])
    peak = flood["peak_mm"]
    banner = html.Div(
        [html.Span("FLOOD", className="flood-word"),
         html.Span([f"since {fmt_time(flood['start'], tz, now)}",
                    html.Span(f" ({duration_text((now - flood['start']).total_seconds())})",
                              className="muted")]),
         html.Span(f"{len(flooding)} gauge{'s' if len(flooding) != 1 else ''} flooding"
                   + (f", {drained} drained" if drained else "")),
         html.Span(f"peak {peak:.0f} mm" if peak is not None else "")],
        className="flood-banner", id="flood-banner",
    )
    gauges = [_gauge_row(g) for g in flooding[:GAUGE_ROWS]]
    gauges += _more(len(flooding), GAUGE_ROWS, "flooding gauges")
    cases: list[Component] = [_case_row(c, tz, now) for c in flood["open_cases"][:CASE_ROWS]]
    cases += _more(len(flood["open_cases"]), CASE_ROWS, "open cases")
    if not flood["open_cases"]:
        cases.append(html.Div("No open flood cases.", className="empty"))
    # those already on flood cases first, then the free ones
    engaged = sorted(flood["crews"], key=lambda w: (-w["open_tickets"], w["cell_code"], w["id"]))
    crews: list[Component] = [_crew_row(w) for w in engaged[:CREW_ROWS]]
    crews += _more(len(flood["crews"]), CREW_ROWS, "on duty")
    if not flood["crews"]:
        crews.append(html.Div("Nobody on duty in these streets.", className="empty alarm-text"))
    return [
        banner,
        _others(list(others or []), tz, now),
        html.Section([html.H2(["Flooding gauges",
                               dcc.Link("event report", href=f"/flood/{flood['id']}",
                                        className="flood-report-link")]),
                      html.Div(gauges, id="flood-gauges")],
                     className="panel flood-gauges-panel"),
        html.Div(
            [html.Section([html.H2(f"Open flood cases ({len(flood['open_cases'])})"),
                           html.Div(cases, id="flood-cases")], className="panel flood-list"),
             html.Section([html.H2(f"Crews on duty ({len(flood['crews'])})"),
                           html.Div(f"in {streets}" if streets else "", className="flood-streets"),
                           html.Div(crews, id="flood-crews")], className="panel flood-list")],
            className="flood-lower",
        ),
    ]


def side(view: Mapping[str, Any], tz: ZoneInfo, now: datetime) -> html.Div:
    """The flood side, hidden while there is no flood."""
    flood = view["flood"]
    return html.Div(side_children(flood, tz, now, view["others"]), id="flood-side",
                    className="flood-side", style={} if flood else HIDDEN)


def normal_style(view: Mapping[str, Any]) -> dict[str, str]:
    """Style of the wall's normal side (alert feed and ticket board): hidden during a flood."""
    return HIDDEN if view["flood"] else {}


def stores(trace_index: int | None) -> dcc.Store:
    """Where the refresh finds the rings trace of the map (None: no map)."""
    return dcc.Store(id="flood-traces", data=trace_index)


callbacks = Callbacks()


@callbacks(
    Output("flood-side", "children"),
    Output("flood-side", "style"),
    Output("wall-side", "style"),
    Output("wall-map-title", "children"),
    Output("wall-map", "figure", allow_duplicate=True),
    Input("wall-tick", "n_intervals"),
    State("flood-traces", "data"),
    prevent_initial_call=True,
)
def refresh(_tick: int | None, trace_index: int | None) -> tuple[Any, ...]:
    """The flood view's refresh, on the wall's own tick."""
    require_role(*ROLES)
    ctx = context()
    now = ctx.now()
    view = read_flood(ctx.db, now, ctx.tz)
    flood = view["flood"]
    figure: Any = no_update
    if trace_index is not None:
        rings, cameras = flood_layers(flood)
        figure = Patch()
        for key, value in rings.items():
            figure["data"][trace_index][key] = value
        for key, value in cameras.items():
            figure["data"][trace_index + 1][key] = value
    return (side_children(flood, ctx.tz, now, view["others"]), {} if flood else HIDDEN,
            normal_style(view), map_title(flood), figure)

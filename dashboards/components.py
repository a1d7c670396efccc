"""Shared pieces of the pages: the top bar, badges, tables, time formatting and offline maps.

Maps are ``go.Choroplethmap`` cells with ``go.Scattermap`` markers (markers only: text labels
would make MapLibre fetch glyphs) on a style that has a background layer and nothing to fetch, so
the browser loads no tiles, fonts or sprites: the maps work on an intranet with no internet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component
from shapely.geometry import shape

from cityops.platform.text import duration_text
from dashboards.auth import ROLE_NAMES, WebUser

BACKGROUND = "#0b1322"
FOREGROUND = "#e8eef6"
# A MapLibre style with nothing to download: a background layer and no glyphs or tiles. Its one
# source is an empty inline GeoJSON: plotly.js drops an empty "sources" object when it re-applies
# the style on an update, and MapLibre then rejects the style ("missing required property").
OFFLINE_MAP_STYLE: dict[str, Any] = {
    "version": 8,
    "sources": {"blank": {"type": "geojson",
                          "data": {"type": "FeatureCollection", "features": []}}},
    "layers": [{"id": "background", "type": "background",
                "paint": {"background-color": BACKGROUND}}],
}
SEVERITY_COLOURS = {"critical": "#ff4d4f", "high": "#ff9f1a", "medium": "#ffd43b", "low": "#74c0fc"}
SEVERITY_SIZES = {"critical": 30, "high": 26, "medium": 21, "low": 17}
PRIORITY_COLOURS = {"urgent": "#ff4d4f", "normal": "#ffd43b", "low": "#74c0fc"}
# open alerts per cell -> colour; 4 or more is the top of the scale
ALERT_SCALE = [[0.0, "#1a2b45"], [0.25, "#8a5a12"], [0.5, "#c77d0a"], [1.0, "#e0342f"]]
ALERT_SCALE_MAX = 4
KIND_NAMES = {"water_meter": "Water meters", "flood_gauge": "Flood gauges",
              "manhole_cover": "Manhole covers"}
# the case workflow's states (cityops.cases.tickets.STATES) and the buttons that move a case to them
STATUS_LABELS = {
    "reported": "Reported", "accepted": "Accepted", "voided": "Voided",
    "registered": "Registered", "dispatched": "Dispatched", "signed_for": "Signed for",
    "in_progress": "In progress", "handled": "Handled", "verified": "Verified",
    "closed": "Closed", "evaluated": "Evaluated", "returned": "Returned", "rework": "Rework",
    "postponed": "Postponed",
}
ACTION_LABELS = {
    "accepted": "Accept", "voided": "Void (not a case)", "registered": "Register",
    "dispatched": "Dispatch", "returned": "Return (wrong owner)", "signed_for": "Sign for",
    "in_progress": "Start work", "postponed": "Postpone", "handled": "Handled",
    "verified": "Verified on site", "rework": "Send to rework", "closed": "Close",
    "evaluated": "Evaluate",
}
NAV = {
    "operations": [("Wall", "/"), ("Verify", "/verify"), ("Reviews", "/reviews"),
                   ("Report", "/report"), ("Floods", "/flood")],
    "admin": [("Wall", "/"), ("Admin", "/admin"), ("Reviews", "/reviews"),
              ("Report", "/report"), ("Floods", "/flood")],
    "grid_worker": [("My tickets", "/worker"), ("Verify", "/verify"),
                    ("Reviews", "/reviews")],
    "civil_affairs": [("Households", "/civil"), ("Needs", "/needs"),
                      ("Second look", "/needs/second-look"), ("Tasks", "/needs/tasks"),
                      ("Summary", "/needs/summary"), ("Fairness", "/needs/fairness"),
                      ("Import", "/needs/import")],
    "hotline": [("Hotline", "/hotline")],
    "supervisor": [("Verify", "/verify"), ("Reviews", "/reviews"), ("Report", "/report")],
}


def fmt_time(value: datetime | None, tz: ZoneInfo, now: datetime, seconds: bool = False) -> str:
    """Local clock time; the date too when it is not today."""
    if value is None:
        return "—"
    local = value.astimezone(tz)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if local.date() == now.astimezone(tz).date():
        return clock
    return f"{local:%d %b} {clock}"


def updated_label(now: datetime, tz: ZoneInfo, verb: str = "Updated") -> str:
    """'Updated 14:05:09': when a page's figures were read, shown in its top bar."""
    return f"{verb} {fmt_time(now, tz, now, seconds=True)}"


def fmt_left(deadline: datetime | None, now: datetime) -> str:
    """Time left until a deadline, or how long it is overdue."""
    if deadline is None:
        return "—"
    left = (deadline - now).total_seconds()
    if left >= 0:
        return f"{duration_text(left)} left"
    return f"overdue {duration_text(left)}"


def badge(text: str, kind: str) -> html.Span:
    """A coloured label (kind: e.g. 'sev-critical', 'prio-urgent', 'st-dispatched')."""
    return html.Span(text, className=f"badge {kind}")


def header(title: str, user: WebUser, here: str, *, updated: str | None = None) -> html.Header:
    """The top bar: title, links to the role's other pages (``here`` is this page's path), when
    the data was read (``updated``, element id ``updated``), who is signed in."""
    links = [dcc.Link(label, href=href, className="nav-link")
             for label, href in NAV[user.role] if href != here]
    right: list[Component] = []
    if updated is not None:
        right.append(html.Span(updated, id="updated", className="updated"))
    right += [
        html.Span([user.display_name, html.Span(f" · {ROLE_NAMES[user.role]}", className="role")],
                  className="who"),
        html.A("Sign out", href="/logout", className="nav-link"),
    ]
    return html.Header(
        [html.H1(title), html.Nav(links, className="nav"), html.Div(right, className="right")],
        className="topbar",
    )


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], class_name: str = ""
) -> html.Table:
    """A plain table; cells may be text or components."""
    body = [html.Tr([html.Td(cell) for cell in row]) for row in rows]
    if not body:
        body = [html.Tr(html.Td("Nothing to show.", colSpan=len(columns), className="muted"))]
    return html.Table(
        [html.Thead(html.Tr([html.Th(c) for c in columns])), html.Tbody(body)],
        className=f"table {class_name}".strip(),
    )


def message_view(title: str, text: str, user: WebUser | None = None) -> html.Div:
    """A full-page message (not found, not allowed) with a way back."""
    home = NAV[user.role][0][1] if user else "/login"
    return html.Div(
        html.Div([html.H1(title), html.P(text), dcc.Link("Back to your page", href=home)],
                 className="login-box"),
        className="plain",
    )


def fit_view(cells: Sequence[Mapping[str, Any]], width: int, height: int) -> tuple[
    dict[str, float], float
]:
    """Map centre and zoom that show all cells in a ``width`` x ``height`` pixel map."""
    bounds = [shape(c["geometry"]).bounds for c in cells]
    west, south = min(b[0] for b in bounds), min(b[1] for b in bounds)
    east, north = max(b[2] for b in bounds), max(b[3] for b in bounds)

    def mercator(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    span_x = max((east - west) / 360, 1e-7)
    span_y = max((mercator(north) - mercator(south)) / (2 * math.pi), 1e-7)
    # MapLibre draws the world 512 px wide at zoom 0; keep a margin of 8 %
    zoom = min(math.log2(width * 0.92 / (512 * span_x)), math.log2(height * 0.92 / (512 * span_y)))
    centre = {"lon": (west + east) / 2, "lat": (south + north) / 2}
    return centre, round(min(zoom, 17.0), 2)


def alert_markers(alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Scattermap data for open alerts; customdata is the alert's ticket id (or None)."""
    placed = [a for a in alerts if a["lon"] is not None and a["lat"] is not None]
    return {
        "lon": [a["lon"] for a in placed],
        "lat": [a["lat"] for a in placed],
        "customdata": [a["ticket_id"] for a in placed],
        "hovertext": [f"{a['severity'].upper()}: {a['message']}<br>{a['cell'] or ''}"
                      for a in placed],
        "marker": {
            "size": [SEVERITY_SIZES[a["severity"]] for a in placed],
            "color": [SEVERITY_COLOURS[a["severity"]] for a in placed],
            "opacity": 0.95,
        },
    }


def cell_map(
    cells: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
    markers: Mapping[str, Any],
    *,
    width: int,
    height: int,
    show_scale: bool = True,
) -> go.Figure:
    """Cells coloured by open alerts, with markers on top, on the offline background."""
    codes = [c["code"] for c in cells]
    geojson = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "id": c["code"], "properties": {},
                      "geometry": c["geometry"]} for c in cells],
    }
    centre, zoom = fit_view(cells, width, height)
    figure = go.Figure(
        [
            go.Choroplethmap(
                geojson=geojson,
                locations=codes,
                z=[counts.get(code, 0) for code in codes],
                zmin=0,
                zmax=ALERT_SCALE_MAX,
                colorscale=ALERT_SCALE,
                marker={"line": {"color": "#5b7194", "width": 1}, "opacity": 0.9},
                text=[c["name"] for c in cells],
                hovertemplate="%{text}<br>%{z} open alerts<extra></extra>",
                showscale=show_scale,
                colorbar={"title": {"text": "open alerts", "side": "right"}, "thickness": 14,
                          "tickvals": [0, 1, 2, 3, 4], "ticktext": ["0", "1", "2", "3", "4+"],
                          "len": 0.5, "x": 0.99, "xanchor": "right", "y": 0.02,
                          "yanchor": "bottom", "bgcolor": "rgba(11,19,34,0.7)"},
            ),
            go.Scattermap(mode="markers", hoverinfo="text", **markers),
        ]
    )
    figure.update_layout(
        map={"style": OFFLINE_MAP_STYLE, "center": centre, "zoom": zoom},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        paper_bgcolor=BACKGROUND,
        font={"color": FOREGROUND, "size": 15},
        showlegend=False,
        uirevision="keep",
        hoverlabel={"font": {"size": 17}},
    )
    return figure



def empty_figure(text: str) -> go.Figure:
    """A blank dark figure that says why there is no map."""
    figure = go.Figure()
    figure.update_layout(
        paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis={"visible": False}, yaxis={"visible": False},
        annotations=[{"text": text, "showarrow": False, "font": {"size": 22, "color": FOREGROUND},
                      "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}],
    )
    return figure

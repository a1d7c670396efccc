"""A ticket ``/tickets/<id>``: what, where, who and why, deadlines, the alert and the timeline,
with the changes the signed-in user's role may make (operations and admin: any ticket; a grid
worker: only tickets assigned to them)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import dash
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import Forbidden

from cityops import dispatch, queries
from cityops.tickets import NOTE_REQUIRED, Actor, TransitionError, allowed_next
from dashboards.auth import WebUser, require_role
from dashboards.components import (
    ACTION_LABELS,
    STATUS_LABELS,
    badge,
    fmt_left,
    fmt_time,
    header,
    message_view,
    updated_label,
)
from dashboards.context import AppContext, Page

ROLES = ("operations", "admin", "grid_worker")
REFRESH_MS = 10_000


def may_open(ctx: AppContext, user: WebUser, ticket_id: str | int) -> bool:
    """Operations and admin open any ticket; a grid worker only one assigned to them."""
    if user.role != "grid_worker":
        return True
    with ctx.pool.connection() as conn:
        owner = queries.ticket_worker(conn, int(ticket_id))
    return owner is not None and owner == user.worker_id


def _fact(label: str, value: Any) -> html.Div:
    return html.Div([html.Dt(label), html.Dd(value)], className="fact")


def _deadline(value: datetime | None, ctx: AppContext, now: datetime, active: bool) -> str:
    if value is None:
        return "—"
    text = fmt_time(value, ctx.tz, now)
    return f"{text} ({fmt_left(value, now)})" if active else text


def body_view(t: Mapping[str, Any], ctx: AppContext, now: datetime) -> list[Component]:
    """Ticket facts, its alert and its timeline."""
    awaiting_ack = t["status"] in ("new", "dispatched")
    in_work = t["status"] in ("new", "dispatched", "acknowledged", "arrived")
    worker = f"{t['worker']} ({t['worker_id']})" if t["worker_id"] else "nobody yet"
    location = f"{t['lat']:.5f} N, {t['lon']:.5f} E" if t["lat"] is not None else "—"
    facts = html.Dl(
        [
            _fact("Cell", f"{t['cell'] or '—'} ({t['grid_code'] or 'no cell'})"),
            _fact("Location", location),
            _fact("Assigned to", worker),
            _fact("Why", t["assigned_reason"] or "—"),
            _fact("Acknowledge by", _deadline(t["ack_due_at"], ctx, now, awaiting_ack)),
            _fact("Resolve by", _deadline(t["due_at"], ctx, now, in_work)),
            _fact("Opened", fmt_time(t["created_at"], ctx.tz, now)),
            _fact("Category", t["category"]),
        ],
        className="facts",
    )
    sections: list[Component] = [
        html.Section(
            [
                html.H2(t["title"], id="tk-title", className="title"),
                html.Div(
                    [badge(t["priority"], f"prio-{t['priority']}"),
                     badge(STATUS_LABELS[t["status"]], f"st-{t['status']}"),
                     html.Span("overdue", className="badge overdue-badge") if t["overdue"]
                     else None],
                    className="badges", id="tk-status",
                ),
                facts,
            ],
            className="panel",
        )
    ]
    alert = t["alert"]
    if alert:
        sections.append(html.Section(
            [
                html.H2("Alert"),
                html.P([badge(alert["severity"], f"sev-{alert['severity']}"), " ",
                        alert["message"]], className="alert-message"),
                html.P(
                    f"Device {alert['source_id']} · first seen "
                    f"{fmt_time(alert['first_seen'], ctx.tz, now)} · last seen "
                    f"{fmt_time(alert['last_seen'], ctx.tz, now)} · {alert['occurrences']}"
                    f" reading(s) · alert {alert['status']}",
                    className="muted",
                ),
            ],
            className="panel",
        ))
    # Cameras nearby (flood alerts list the cameras within 300 m of the gauge)
    if alert and alert["kind"] == "flood_depth":
        with ctx.pool.connection() as conn:
            nearby = queries.ticket_cameras(conn, int(t["id"]))
        sections.append(html.Section(
            [html.H2("Cameras nearby"),
             html.Ul([html.Li([html.A(c["label"], href=c["stream_url"], target="_blank")
                               if c["stream_url"] else html.Span(c["label"]),
                               html.Span(f" {c['id']} · {c['distance_m']} m away",
                                         className="muted")])
                      for c in nearby], id="tk-cameras")
             if nearby else html.P("No camera within 300 m.", id="tk-cameras",
                                   className="muted")],
            className="panel",
        ))
    # Water use today against the household's usual range (water-meter alerts; no resident data)
    if alert and alert["kind"].startswith("water_"):
        with ctx.pool.connection() as conn:
            chart = queries.water_day_chart(conn, alert["source_id"], now, ctx.tz)
        if chart is not None:
            hours = [f"{h:02d}:00" for h in range(24)]
            figure = go.Figure()
            if chart["band_high_l"] is not None:
                figure.add_trace(go.Scatter(x=hours, y=chart["band_high_l"], mode="lines",
                                            line={"width": 0, "shape": "hvh"},
                                            hoverinfo="skip", showlegend=False))
                figure.add_trace(go.Scatter(
                    x=hours, y=chart["band_low_l"], mode="lines", fill="tonexty",
                    line={"width": 0, "shape": "hvh"}, fillcolor="rgba(116,192,252,0.3)",
                    name=f"usual range ({chart['history_days']} days)"))
            figure.add_trace(go.Bar(x=hours[: chart["now_hour"] + 1],
                                    y=chart["today"][: chart["now_hour"] + 1],
                                    marker_color="#ffd43b", name="today"))
            figure.update_layout(height=220, margin={"l": 40, "r": 10, "t": 10, "b": 30},
                                 yaxis_title="litres per hour", bargap=0.15,
                                 legend={"orientation": "h", "y": 1.15},
                                 paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
            note = ("" if chart["band_high_l"] is not None
                    else "No usual range yet: the meter's history is stored once a day.")
            sections.append(html.Section(
                [html.H2("Water use today"),
                 dcc.Graph(id="tk-water-chart", figure=figure,
                           config={"displayModeBar": False, "staticPlot": True}),
                 html.P(note, className="muted") if note else None],
                className="panel",
            ))
    events = [
        html.Li(
            [html.Span(fmt_time(e["at"], ctx.tz, now, seconds=True), className="time"),
             html.Span(e["actor"], className="actor"),
             html.Span(f"{STATUS_LABELS.get(e['from_status'] or '', 'start')} → "
                       f"{STATUS_LABELS[e['to_status']]}", className="change"),
             html.Span(e["note"], className="note")],
            className="event",
        )
        for e in t["events"]
    ]
    sections.append(html.Section([html.H2("Timeline"), html.Ol(events, id="tk-timeline")],
                                 className="panel"))
    return sections


def buttons_view(t: Mapping[str, Any], user: WebUser) -> list[Component]:
    """A button for each change the user's role may make from the ticket's status."""
    options = allowed_next(t["status"], user.role)
    if not options:
        return [html.P("There is nothing you can change on this ticket now.", className="muted")]
    return [
        html.Button(ACTION_LABELS[to] + (" (note required)" if to in NOTE_REQUIRED else ""),
                    id={"type": "tk-action", "to": to}, className=f"btn btn-{to}")
        for to in options
    ]


def layout(ctx: AppContext, ticket_id: str) -> Component:
    """The ticket page (403 for a grid worker's look at someone else's ticket)."""
    user = require_role(*ROLES)
    if not may_open(ctx, user, ticket_id):
        raise Forbidden("this ticket is not assigned to you")
    now = ctx.now()
    with ctx.pool.connection() as conn:
        ticket = queries.ticket_detail(conn, int(ticket_id), now)
    if ticket is None:
        return message_view("Ticket not found", f"There is no ticket #{ticket_id}.", user)
    return html.Div(
        [
            header(f"Ticket #{ticket['id']}", user, f"/tickets/{ticket['id']}",
                   updated=updated_label(now, ctx.tz, "Read")),
            html.Main(
                [
                    html.Div(body_view(ticket, ctx, now), id="tk-body", className="tk-body"),
                    html.Section(
                        [html.H2("Update this ticket"),
                         dcc.Textarea(id="tk-note", className="note-field",
                                      placeholder="Note: what was done, or why"),
                         html.Div(buttons_view(ticket, user), id="tk-buttons",
                                  className="buttons"),
                         html.Div(id="tk-msg", role="status")],
                        className="panel actions",
                    ),
                ],
                className="ticket-page",
            ),
            dcc.Store(id="tk-id", data=ticket["id"]),
            dcc.Store(id="tk-state", data=ticket["status"]),
            dcc.Interval(id="tk-tick", interval=REFRESH_MS),
        ],
        className="page",
    )


def register(app: Dash, ctx: AppContext) -> None:
    """The ticket page's callbacks: a change by the user, and the periodic refresh."""

    def reload(user: WebUser, ticket_id: int) -> dict[str, Any]:
        if not may_open(ctx, user, ticket_id):
            raise Forbidden("this ticket is not assigned to you")
        with ctx.pool.connection() as conn:
            ticket = queries.ticket_detail(conn, ticket_id, ctx.now())
        if ticket is None:
            raise PreventUpdate
        return ticket

    @app.callback(
        Output("tk-body", "children"),
        Output("tk-buttons", "children"),
        Output("tk-state", "data"),
        Output("tk-msg", "children"),
        Output("tk-note", "value"),
        Input({"type": "tk-action", "to": ALL}, "n_clicks"),
        State("tk-note", "value"),
        State("tk-id", "data"),
        prevent_initial_call=True,
    )
    def act(clicks: list[int | None], note: str | None, ticket_id: int) -> tuple[Any, ...]:
        user = require_role(*ROLES)
        trigger = dash.ctx.triggered_id
        if not trigger or not any(clicks):
            raise PreventUpdate
        to_status = trigger["to"]
        reload(user, ticket_id)  # refuses a ticket that is not the worker's
        actor = Actor(user.username, user.role, user.worker_id)
        try:
            with ctx.pool.connection() as conn:
                dispatch.change_ticket(conn, ticket_id, to_status, actor, ctx.topics, note or "")
        except TransitionError as exc:
            message: Component = html.P(f"Not changed: {exc}.", className="error")
            cleared: Any = no_update
        else:
            message = html.P(f"Done: the ticket is now {STATUS_LABELS[to_status].lower()}.",
                             className="ok")
            cleared = ""
        ticket = reload(user, ticket_id)
        return (body_view(ticket, ctx, ctx.now()), buttons_view(ticket, user), ticket["status"],
                message, cleared)

    @app.callback(
        Output("tk-body", "children", allow_duplicate=True),
        Output("tk-buttons", "children", allow_duplicate=True),
        Output("tk-state", "data", allow_duplicate=True),
        Output("updated", "children", allow_duplicate=True),
        Input("tk-tick", "n_intervals"),
        State("tk-id", "data"),
        State("tk-state", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: int, ticket_id: int, shown_status: str) -> tuple[Any, ...]:
        user = require_role(*ROLES)
        now = ctx.now()
        ticket = reload(user, ticket_id)
        changed = ticket["status"] != shown_status
        return (body_view(ticket, ctx, now),
                buttons_view(ticket, user) if changed else no_update,
                ticket["status"] if changed else no_update,
                updated_label(now, ctx.tz, "Read"))


PAGE = Page(pattern=r"/tickets/(?P<ticket_id>\d+)", roles=ROLES, layout=layout,
            register=register, may_open=may_open)

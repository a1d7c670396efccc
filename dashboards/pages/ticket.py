"""A case ``/tickets/<id>``: what, where, who and why, the limit of each stage, the alert and the
timeline (kind, who in which role, the change, the note, the photos), with what the signed-in user
may do (docs/web.md):

- a button for each move :func:`cityops.cases.tickets.allowed_next` gives the user's role from the
  case's state, with the note field (required where the rule says so);
- operations decide a postponement the worker asked for (approve or refuse, with the note);
- operations dispatch by hand a registered or returned case that has no worker, choosing a worker
  of the case's cell (:func:`cityops.cases.commands.dispatch_by_hand`).

Operations, admin, supervisors and the hotline open any case; a grid worker only one assigned to
them. No reporter's personal details are shown here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dash
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import Forbidden

from cityops.cases import commands
from cityops.cases.assignment import DISPATCHABLE
from cityops.cases.tickets import TRANSITIONS, Actor, TransitionError, allowed_next
from cityops.views import tickets as tickets_view
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
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import WebUser, require_role

ROLES = ("operations", "admin", "grid_worker", "supervisor", "hotline")
OPS = ("operations", "admin")
REFRESH_MS = 10_000
SOURCE_LABELS = {"sensor": "sensor alert", "patrol": "grid worker on patrol",
                 "citizen": "citizen (Open311)", "hotline": "12345 hotline",
                 "scheduled": "scheduled inspection"}
KIND_LABELS = {"assignment": "assignment", "reminder": "reminder", "escalation": "escalation",
               "note": "note", "link": "duplicate", "postponement": "postponement",
               "rating": "rating", "follow_up": "follow-up", "appeal": "appeal"}


def may_open(ctx: AppContext, user: WebUser, ticket_id: str | int) -> bool:
    """A grid worker opens only a case assigned to them; the other roles of the page any."""
    if user.role != "grid_worker":
        return True
    owner = tickets_view.read_ticket_worker(ctx.db, int(ticket_id))
    return owner is not None and owner == user.worker_id


def _fact(label: str, value: Any) -> html.Div:
    return html.Div([html.Dt(label), html.Dd(value)], className="fact")


def _deadline(value: datetime | None, ctx: AppContext, now: datetime, active: bool) -> str:
    if value is None:
        return "—"
    text = fmt_time(value, ctx.tz, now)
    return f"{text} ({fmt_left(value, now)})" if active else text


def _unit(ctx: AppContext, category: str) -> str:
    """The minor category's responsible unit (a case filed without one)."""
    found = ctx.desk.clock.catalogue.categories.get(category)
    return found.unit if found else "—"


def _stage(t: Mapping[str, Any], stage: str) -> bool:
    return bool(t["deadline_kind"] == stage)


def body_view(t: Mapping[str, Any], ctx: AppContext, now: datetime) -> list[Component]:
    """Case facts, the postponement waiting, its alert (with the cameras near a flood, or the
    water meter's day) and its timeline."""
    sections = [_case_section(t, ctx, now), _postponement_section(t, ctx, now),
                _alert_section(t, ctx, now)]
    alert = t["alert"]
    if alert and alert["kind"] == "flood_depth":
        sections.append(_cameras_section(t["cameras"]))
    if t["water_chart"] is not None:
        sections.append(_water_section(t["water_chart"]))
    events = [_event_view(e, ctx, now) for e in t["events"]]
    sections.append(html.Section([html.H2("Timeline"), html.Ol(events, id="tk-timeline")],
                                 className="panel"))
    return [s for s in sections if s is not None]


def _facts(t: Mapping[str, Any], ctx: AppContext, now: datetime) -> html.Dl:
    """What, where, who and why, and the limit of each stage."""
    worker = f"{t['worker']} ({t['worker_id']})" if t["worker_id"] else "nobody yet"
    location = f"{t['lat']:.5f} N, {t['lon']:.5f} E" if t["lat"] is not None else "—"
    source = SOURCE_LABELS.get(t["source"], t["source"])
    if t["call_type"]:
        source += f", {t['call_type']}"
    if t["fixed_on_spot"]:
        source += ", fixed on the spot"
    done = [f"handled by {t['handled_by']} {fmt_time(t['handled_at'], ctx.tz, now)}"
            if t["handled_by"] else None,
            f"verified by {t['verified_by']} {fmt_time(t['verified_at'], ctx.tz, now)}"
            if t["verified_by"] else None]
    return html.Dl(
        [
            _fact("Category", ctx.desk.clock.catalogue.label(t["category"])),
            _fact("Responsible unit", t["unit"] or _unit(ctx, t["category"])),
            _fact("Source", source),
            _fact("Cell", f"{t['cell'] or '—'} ({t['grid_code'] or 'no cell'})"),
            _fact("Address", t["case_address"] or "—"),
            _fact("Location", location),
            _fact("Assigned to", worker),
            _fact("Why", t["assigned_reason"] or "—"),
            _fact("Dispatch by", _deadline(t["dispatch_due_at"], ctx, now, _stage(t, "dispatch"))),
            _fact("Sign for by", _deadline(t["ack_due_at"], ctx, now, _stage(t, "sign"))),
            _fact("Handle by", _deadline(t["due_at"], ctx, now, _stage(t, "handle"))),
            _fact("Done", "; ".join(d for d in done if d) or "—"),
            _fact("Opened", fmt_time(t["created_at"], ctx.tz, now)),
        ]
        + ([_fact("Duplicate of", dcc.Link(f"#{t['duplicate_of']}",
                                           href=f"/tickets/{t['duplicate_of']}"))]
           if t["duplicate_of"] else []),
        className="facts",
    )


def _case_section(t: Mapping[str, Any], ctx: AppContext, now: datetime) -> html.Section:
    return html.Section(
        [
            html.H2(t["title"], id="tk-title", className="title"),
            html.Div(
                [badge(t["priority"], f"prio-{t['priority']}"),
                 badge(STATUS_LABELS[t["status"]], f"st-{t['status']}"),
                 html.Span("overdue", className="badge overdue-badge") if t["overdue"]
                 else None],
                className="badges", id="tk-status",
            ),
            html.P(t["description"], className="description"),
            _facts(t, ctx, now),
        ],
        className="panel",
    )


def _postponement_section(t: Mapping[str, Any], ctx: AppContext,
                          now: datetime) -> html.Section | None:
    waiting = t["postponement"]
    if not waiting:
        return None
    due = datetime.fromisoformat(waiting["new_due_at"])
    return html.Section(
        [html.H2("Postponement asked"),
         html.P(f"{waiting['requested_by']} asks to postpone to "
                f"{fmt_time(due, ctx.tz, now)}: {waiting['reason']}", id="tk-postponement")],
        className="panel",
    )


def _alert_section(t: Mapping[str, Any], ctx: AppContext, now: datetime) -> html.Section | None:
    alert = t["alert"]
    if not alert:
        return None
    return html.Section(
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
    )


def _cameras_section(nearby: Sequence[Mapping[str, Any]]) -> html.Section:
    """The cameras within 300 m of a flood gauge, nearest first."""
    return html.Section(
        [html.H2("Cameras nearby"),
         html.Ul([html.Li([html.A(c["label"], href=c["stream_url"], target="_blank")
                           if c["stream_url"] else html.Span(c["label"]),
                           html.Span(f" {c['id']} · {c['distance_m']} m away",
                                     className="muted")])
                  for c in nearby], id="tk-cameras")
         if nearby else html.P("No camera within 300 m.", id="tk-cameras", className="muted")],
        className="panel",
    )


def _water_section(chart: Mapping[str, Any]) -> html.Section:
    """Water use today against the household's usual range (the meter, no resident data)."""
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
    return html.Section(
        [html.H2("Water use today"),
         dcc.Graph(id="tk-water-chart", figure=figure,
                   config={"displayModeBar": False, "staticPlot": True}),
         html.P(note, className="muted") if note else None],
        className="panel",
    )


def _event_view(e: Mapping[str, Any], ctx: AppContext, now: datetime) -> html.Li:
    """One event: when, who (role), what kind, the change, the note, the photos."""
    if e["from_status"] != e["to_status"]:
        change = (f"{STATUS_LABELS.get(e['from_status'] or '', 'start')} → "
                  f"{STATUS_LABELS[e['to_status']]}")
    else:
        change = f"({STATUS_LABELS[e['to_status']].lower()})"
    who = e["actor"] + (f" · {e['role']}" if e["role"] and e["role"] != e["actor"] else "")
    photos = list(e["photos"] or [])
    kind = ([badge(KIND_LABELS[e["kind"]], f"kind-{e['kind']}"), " "]
            if e["kind"] != "transition" else [])
    pictures: list[Component | str] = []
    if photos:
        pictures = [f" · {len(photos)} photo{'s' if len(photos) != 1 else ''}: ",
                    *[html.A(f"#{p} ", href=f"/photos/{p}", target="_blank",
                             className="photo-link") for p in photos]]
    return html.Li(
        [html.Span(fmt_time(e["at"], ctx.tz, now, seconds=True), className="time"),
         html.Span(who, className="actor"),
         html.Span([*kind, change], className="change"),
         html.Span([e["note"], *pictures], className="note")],
        className=f"event event-{e['kind']}",
    )


def buttons_view(t: Mapping[str, Any], user: WebUser) -> list[Component]:
    """A button for each move the user's role may make from the case's state; for operations
    also the postponement decision and dispatch by hand (to one of ``t["cell_workers"]``)."""
    options = [to for to in allowed_next(t["status"], user.role) if to != "dispatched"]
    parts: list[Component] = [
        html.Button(ACTION_LABELS[to] + (" (note required)" if TRANSITIONS[to].note_required
                                         else ""),
                    id={"type": "tk-action", "to": to}, className=f"btn btn-{to}")
        for to in options
    ]
    if user.role in OPS and t["postponement"]:
        parts += [
            html.Button("Approve the postponement", id={"type": "tk-postpone", "approve": 1},
                        className="btn btn-approve"),
            html.Button("Refuse the postponement (say why)",
                        id={"type": "tk-postpone", "approve": 0}, className="btn btn-refuse"),
        ]
    if user.role in OPS and t["status"] in DISPATCHABLE and not t["worker_id"]:
        choices = [{"label": f"{w['name']} ({w['id']}, {w['in_hand']} in hand)",
                    "value": w["id"]} for w in t["cell_workers"]]
        parts.append(html.Div(
            [html.Label("Dispatch by hand to a worker of the cell", htmlFor="tk-worker"),
             dcc.Dropdown(id={"type": "tk-worker", "n": 0}, options=choices,
                          placeholder="choose a worker" if choices else
                          "no active worker in this cell", clearable=False),
             html.Button("Dispatch", id={"type": "tk-dispatch", "n": 0},
                         className="btn btn-dispatched")],
            className="dispatch-by-hand",
        ))
    if not parts:
        return [html.P("There is nothing you can change on this case now.", className="muted")]
    return parts


def layout(ctx: AppContext, ticket_id: str) -> Component:
    """The ticket page (403 for a grid worker's look at someone else's ticket)."""
    user = require_role(*ROLES)
    if not may_open(ctx, user, ticket_id):
        raise Forbidden("this ticket is not assigned to you")
    now = ctx.now()
    ticket = tickets_view.read_ticket(ctx.db, int(ticket_id), now, ctx.tz)
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
                        [html.H2("Update this case"),
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
            dcc.Store(id="tk-state", data=_shown(ticket)),
            dcc.Interval(id="tk-tick", interval=REFRESH_MS),
        ],
        className="page",
    )


def _shown(t: Mapping[str, Any]) -> str:
    """What decides the buttons: the state, a postponement waiting, the worker."""
    return f"{t['status']}|{'postponement' if t['postponement'] else ''}|{t['worker_id'] or ''}"


def _reload(ctx: AppContext, user: WebUser, ticket_id: int) -> dict[str, Any]:
    if not may_open(ctx, user, ticket_id):
        raise Forbidden("this ticket is not assigned to you")
    ticket = tickets_view.read_ticket(ctx.db, ticket_id, ctx.now(), ctx.tz)
    if ticket is None:
        raise PreventUpdate
    return ticket


def _redraw(ctx: AppContext, user: WebUser, ticket_id: int,
            message: Component) -> tuple[Any, ...]:
    ticket = _reload(ctx, user, ticket_id)
    return body_view(ticket, ctx, ctx.now()), buttons_view(ticket, user), _shown(ticket), message


def _actor(user: WebUser) -> Actor:
    return Actor(user.username, user.role, user.worker_id)


callbacks = Callbacks()


@callbacks(
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
    """A move by the user (the note kept when it is refused)."""
    user = require_role(*ROLES)
    trigger = dash.ctx.triggered_id
    if not trigger or not any(clicks):
        raise PreventUpdate
    ctx = context()
    to_status = trigger["to"]
    _reload(ctx, user, ticket_id)  # refuses a ticket that is not the worker's
    try:
        commands.move(ctx.db, ticket_id, to_status, _actor(user), ctx.topics, note or "")
    except TransitionError as exc:
        message: Component = html.P(f"Not changed: {exc}.", className="error")
        cleared: Any = no_update
    else:
        message = html.P(f"Done: the case is now {STATUS_LABELS[to_status].lower()}.",
                         className="ok")
        cleared = ""
    return (*_redraw(ctx, user, ticket_id, message), cleared)


@callbacks(
    Output("tk-body", "children", allow_duplicate=True),
    Output("tk-buttons", "children", allow_duplicate=True),
    Output("tk-state", "data", allow_duplicate=True),
    Output("updated", "children", allow_duplicate=True),
    Input("tk-tick", "n_intervals"),
    State("tk-id", "data"),
    State("tk-state", "data"),
    prevent_initial_call=True,
)
def refresh(_tick: int, ticket_id: int, shown: str) -> tuple[Any, ...]:
    """The periodic refresh (the buttons only when what decides them changed)."""
    user = require_role(*ROLES)
    ctx = context()
    now = ctx.now()
    ticket = _reload(ctx, user, ticket_id)
    changed = _shown(ticket) != shown
    return (body_view(ticket, ctx, now),
            buttons_view(ticket, user) if changed else no_update,
            _shown(ticket) if changed else no_update,
            updated_label(now, ctx.tz, "Read"))


@callbacks(
    Output("tk-body", "children", allow_duplicate=True),
    Output("tk-buttons", "children", allow_duplicate=True),
    Output("tk-state", "data", allow_duplicate=True),
    Output("tk-msg", "children", allow_duplicate=True),
    Input({"type": "tk-postpone", "approve": ALL}, "n_clicks"),
    State("tk-note", "value"),
    State("tk-id", "data"),
    prevent_initial_call=True,
)
def decide(clicks: list[int | None], note: str | None, ticket_id: int) -> tuple[Any, ...]:
    """Operations approve or refuse the postponement the worker asked for."""
    user = require_role(*OPS)
    trigger = dash.ctx.triggered_id
    if not trigger or not any(clicks):
        raise PreventUpdate
    ctx = context()
    approve = bool(trigger["approve"])
    try:
        commands.decide_postponement(ctx.db, ticket_id, _actor(user), approve, note or "",
                                     ctx.topics)
    except TransitionError as exc:
        message: Component = html.P(f"Not changed: {exc}.", className="error")
    else:
        message = html.P("Done: the postponement is " + ("approved." if approve
                                                        else "refused."), className="ok")
    return _redraw(ctx, user, ticket_id, message)


@callbacks(
    Output("tk-body", "children", allow_duplicate=True),
    Output("tk-buttons", "children", allow_duplicate=True),
    Output("tk-state", "data", allow_duplicate=True),
    Output("tk-msg", "children", allow_duplicate=True),
    Input({"type": "tk-dispatch", "n": ALL}, "n_clicks"),
    State({"type": "tk-worker", "n": ALL}, "value"),
    State("tk-note", "value"),
    State("tk-id", "data"),
    prevent_initial_call=True,
)
def dispatch_by_hand(clicks: list[int | None], chosen: list[str | None], note: str | None,
                     ticket_id: int) -> tuple[Any, ...]:
    """Operations dispatch the case to a worker of its cell they choose."""
    user = require_role(*OPS)
    if not any(clicks):
        raise PreventUpdate
    ctx = context()
    worker = next((w for w in chosen if w), None)
    try:
        if worker is None:
            raise TransitionError("choose a worker first")
        commands.dispatch_by_hand(ctx.db, ticket_id, worker, _actor(user), ctx.desk.clock,
                                  ctx.topics, ctx.now(), note or "")
    except TransitionError as exc:
        message: Component = html.P(f"Not dispatched: {exc}.", className="error")
    else:
        message = html.P(f"Done: the case is dispatched to {worker}.", className="ok")
    return _redraw(ctx, user, ticket_id, message)


PAGE = Page(pattern=r"/tickets/(?P<ticket_id>\d+)", roles=ROLES, layout=layout,
            callbacks=(callbacks,), may_open=may_open)

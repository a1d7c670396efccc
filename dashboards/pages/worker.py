"""The grid worker's phone page ``/worker``: my open tickets, most urgent first, with time left,
where to go, and buttons to acknowledge, report arrival and resolve (a note is required to
resolve). It refreshes every 10 seconds without wiping a note being typed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import dash
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops import dispatch, households, queries
from cityops.tickets import TRANSITIONS, Actor, TransitionError, allowed_next
from dashboards.auth import WebUser, require_role
from dashboards.components import (
    ACTION_LABELS,
    PRIORITY_COLOURS,
    STATUS_LABELS,
    badge,
    cell_map,
    empty_figure,
    fmt_left,
    fmt_time,
    header,
    updated_label,
)
from dashboards.context import AppContext, Page

ROLES = ("grid_worker",)
REFRESH_MS = 10_000
MAP_SIZE = (360, 240)


def _left(t: Mapping[str, Any], now: datetime) -> html.Span:
    return html.Span(fmt_left(t["deadline"], now), className="alarm-text" if t["overdue"] else "")


def card(t: Mapping[str, Any], ctx: AppContext, now: datetime) -> html.Article:
    """One ticket as a card with its actions."""
    options = allowed_next(t["status"], "grid_worker")
    where: list[Any] = [html.B("Where: "), t["cell"] or "—"]
    if t["lat"] is not None and t["lon"] is not None:
        where += [html.Br(), html.A(f"{t['lat']:.5f} N, {t['lon']:.5f} E",
                                    href=f"geo:{t['lat']:.6f},{t['lon']:.6f}")]
    due: list[Any] = []
    if t["deadline"] is not None:
        due = [html.B(f"{t['deadline_kind'].capitalize()} by "),
               fmt_time(t["deadline"], ctx.tz, now), " · ",
               html.Span(_left(t, now), id={"type": "wk-left", "ticket": t["id"]})]
    controls: list[Component] = []
    if options:
        needs_note = any(TRANSITIONS[to].note_required for to in options)
        controls = [
            dcc.Textarea(id={"type": "wk-note", "ticket": t["id"]}, className="note-field",
                         placeholder="Note: what you found or did"
                         + (" (required)" if needs_note else "")),
            html.Div([html.Button(ACTION_LABELS[to], className=f"btn btn-{to}",
                                  id={"type": "wk-action", "ticket": t["id"], "to": to})
                      for to in options], className="buttons"),
        ]
    return html.Article(
        [
            html.Div([badge(t["priority"], f"prio-{t['priority']}"),
                      badge(STATUS_LABELS[t["status"]], f"st-{t['status']}"),
                      html.Span(f"#{t['id']}", className="muted")], className="badges"),
            html.H2(t["title"]),
            html.P(t["description"]),
            html.P(where),
            html.P(due),
            *controls,
            dcc.Link("Details and timeline", href=f"/tickets/{t['id']}", className="nav-link"),
        ],
        className=f"card card-{t['priority']}",
        id=f"wk-card-{t['id']}",
    )


def cards_view(tickets: Sequence[Mapping[str, Any]], ctx: AppContext, now: datetime) -> list[
    Component
]:
    """All cards, or a calm message when there is nothing to do."""
    if not tickets:
        return [html.P("No open tickets for you. New ones appear here by themselves.",
                       className="empty")]
    return [card(t, ctx, now) for t in tickets]


def map_figure(ctx: AppContext, user: WebUser, tickets: Sequence[Mapping[str, Any]]) -> (
    go.Figure
):
    """A small offline map: the worker's cell and the cells of their tickets, tickets as dots."""
    codes = {t["grid_code"] for t in tickets if t["grid_code"]}
    if user.user.cell_code:
        codes.add(user.user.cell_code)
    with ctx.pool.connection() as conn:
        cells = queries.cell_shapes(conn, codes=sorted(codes))
    if not cells:
        return empty_figure("No cell to show.")
    placed = [t for t in tickets if t["lon"] is not None and t["lat"] is not None]
    markers = {
        "lon": [t["lon"] for t in placed],
        "lat": [t["lat"] for t in placed],
        "hovertext": [f"#{t['id']} {t['title']}" for t in placed],
        "marker": {"size": 16, "color": [PRIORITY_COLOURS[t["priority"]] for t in placed]},
    }
    return cell_map(cells, {}, markers, width=MAP_SIZE[0], height=MAP_SIZE[1], show_scale=False)


def _signature(tickets: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [[t["id"], t["status"], t["priority"], str(t["deadline"])] for t in tickets]


def layout(ctx: AppContext) -> Component:
    """The worker's page with their current tickets."""
    user = require_role(*ROLES)
    now = ctx.now()
    with ctx.pool.connection() as conn:
        tickets = queries.worker_tickets(conn, user.worker_id or "", now)
    return html.Div(
        [
            header("My tickets", user, "/worker", updated=updated_label(now, ctx.tz)),
            html.Div(id="wk-msg", role="status"),
            html.Div(cards_view(tickets, ctx, now), id="wk-list"),
            html.Section(
                [html.H2("Map"),
                 dcc.Graph(id="wk-map", figure=map_figure(ctx, user, tickets),
                           style={"height": f"{MAP_SIZE[1]}px"},
                           config={"displayModeBar": False, "responsive": True})],
                className="panel",
            ),
            html.Section(  # a resident away or in hospital: no water alerts until the date
                [html.H2("Resident away or in hospital"),
                 dcc.Dropdown(id="wk-away-ticket", placeholder="Water ticket",
                              options=[{"label": f"#{t['id']} {t['title']}", "value": t["id"]}
                                       for t in tickets]),
                 dcc.RadioItems(id="wk-away-reason", value="hospital", inline=True,
                                options=[{"label": " in hospital", "value": "hospital"},
                                         {"label": " away", "value": "away"}]),
                 dcc.DatePickerSingle(id="wk-away-until",
                                      min_date_allowed=now.astimezone(ctx.tz).date()),
                 html.Button("Mark", id="wk-away-mark", className="btn"),
                 html.Div(id="wk-away-msg", role="status")],
                className="panel",
            ),
            dcc.Store(id="wk-sig", data=_signature(tickets)),
            dcc.Store(id="wk-done", data=0),
            dcc.Interval(id="wk-tick", interval=REFRESH_MS),
        ],
        className="phone",
    )


def register(app: Dash, ctx: AppContext) -> None:
    """The worker page's callbacks: ticket changes and the periodic refresh."""

    @app.callback(
        Output("wk-msg", "children"),
        Output("wk-done", "data"),
        Input({"type": "wk-action", "ticket": ALL, "to": ALL}, "n_clicks"),
        State({"type": "wk-note", "ticket": ALL}, "value"),
        State("wk-done", "data"),
        prevent_initial_call=True,
    )
    def act(clicks: list[int | None], _notes: list[str | None], done: int) -> tuple[Any, ...]:
        user = require_role(*ROLES)
        trigger = dash.ctx.triggered_id
        if not trigger or not any(clicks):
            raise PreventUpdate
        ticket_id, to_status = int(trigger["ticket"]), str(trigger["to"])
        note = next((s.get("value") or "" for s in dash.ctx.states_list[0]
                     if s["id"]["ticket"] == ticket_id), "")
        actor = Actor(user.username, "grid_worker", user.worker_id)
        try:
            with ctx.pool.connection() as conn:
                dispatch.change_ticket(conn, ticket_id, to_status, actor, ctx.topics, note)
        except TransitionError as exc:
            return html.P(f"Not changed: {exc}.", className="error"), no_update
        done_text = f"Ticket #{ticket_id}: {STATUS_LABELS[to_status].lower()}."
        return html.P(done_text, className="ok"), done + 1

    @app.callback(
        Output("wk-away-msg", "children"),
        Input("wk-away-mark", "n_clicks"),
        State("wk-away-ticket", "value"),
        State("wk-away-reason", "value"),
        State("wk-away-until", "date"),
        prevent_initial_call=True,
    )
    def mark_away(_clicks: int, ticket_id: int | None, reason: str, until: str | None) -> (
        Component
    ):
        user = require_role(*ROLES)
        if not ticket_id or not until:
            return html.P("Choose the ticket and the last day away.", className="error")
        last_day = datetime.fromisoformat(str(until)[:10]).replace(tzinfo=ctx.tz)
        try:
            with ctx.pool.connection() as conn:
                mark = households.mark_away_for_ticket(
                    conn, int(ticket_id), user.worker_id or "", last_day + timedelta(days=1),
                    reason, user.username, ctx.now())
        except households.AbsenceError as exc:
            return html.P(f"Not marked: {exc}.", className="error")
        return html.P(f"Marked {mark.reason} until {mark.until.astimezone(ctx.tz):%d %b}:"
                      f" no water alerts until then.", className="ok")

    @app.callback(
        Output("wk-list", "children"),
        Output("wk-sig", "data"),
        Output("wk-map", "figure"),
        Output({"type": "wk-left", "ticket": ALL}, "children"),
        Output("updated", "children", allow_duplicate=True),
        Input("wk-tick", "n_intervals"),
        Input("wk-done", "data"),
        State("wk-sig", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: int | None, _done: int, shown: list[list[Any]]) -> tuple[Any, ...]:
        user = require_role(*ROLES)
        now = ctx.now()
        with ctx.pool.connection() as conn:
            tickets = queries.worker_tickets(conn, user.worker_id or "", now)
        left_ids = [o["id"]["ticket"] for o in dash.ctx.outputs_list[3]]
        signature = _signature(tickets)
        if signature != shown:
            return (cards_view(tickets, ctx, now), signature, map_figure(ctx, user, tickets),
                    [no_update] * len(left_ids), updated_label(now, ctx.tz))
        by_id = {t["id"]: t for t in tickets}
        return (no_update, no_update, no_update,
                [_left(by_id[i], now) if i in by_id else no_update for i in left_ids],
                updated_label(now, ctx.tz))


PAGE = Page(pattern="/worker", roles=ROLES, layout=layout, register=register)

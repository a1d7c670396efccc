"""Verification ``/verify``: handled cases waiting to be checked on site (核查).

Supervisors and operations see the handled cases of their centre's area (a street, or the whole
district); a grid worker on patrol sees the handled cases of their own cell that someone else
handled. Each case shows the handler's note and how many photos came with it, and two buttons:
Verify, or Send back for rework (the reason is required). The handler never verifies their own
case: the page refuses it and says why. No caller's name or phone is shown here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dash
from dash import ALL, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.cases import verification
from cityops.cases.verification import VerificationError
from cityops.org.grids import level_of
from dashboards.components import badge, fmt_left, fmt_time, header, updated_label
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.pages.hotline import catalogue
from dashboards.users import WebUser, require_role

ROLES = ("supervisor", "operations", "admin", "grid_worker")


def _area(ctx: AppContext, user: WebUser) -> str:
    try:
        cell = verification.scope_cell(user.user)
    except VerificationError as exc:
        return str(exc)
    if cell is None:
        return "Handled cases of the whole district."
    name = verification.area_name(ctx.db, cell)
    if user.role == "grid_worker":
        return f"Handled cases of your cell {name} that someone else handled."
    what = "street" if level_of(cell) == "street" else "area"
    return f"Handled cases of the {what} {name}."


def read(ctx: AppContext, user: WebUser) -> list[dict[str, Any]]:
    """The handled cases the user verifies."""
    return verification.queue(ctx.db, user.user)


def cards_view(cases: Sequence[Mapping[str, Any]], ctx: AppContext,
               now: datetime) -> list[Component]:
    """One card per handled case, with its note, photos and the two decisions."""
    if not cases:
        return [html.P("No handled cases waiting for verification.", className="empty")]
    labels = catalogue(ctx)
    cards = []
    for c in cases:
        tid = c["id"]
        photos = c["photos"]
        reworks = f" · sent back {c['reworks']}×" if c["reworks"] else ""
        cards.append(html.Article(
            [
                html.Div([badge(c["priority"], f"prio-{c['priority']}"),
                          html.Span(f"Case #{tid}", className="muted"),
                          html.Span(labels.label(c["category"]))], className="badges"),
                html.H2(c["title"]),
                html.P([c["cell"] or "—", " · ", c["address"] or "no address"],
                       className="muted"),
                html.P([html.B("Handled by "), c["handled_by"] or "—", " at ",
                        fmt_time(c["handled_at"], ctx.tz, now), reworks,
                        " · due ", fmt_time(c["due_at"], ctx.tz, now),
                        f" ({fmt_left(c['due_at'], now)})" if c["due_at"] else ""]),
                html.P([html.B("Handler's note: "), c["handler_note"] or "—"]),
                html.P(f"{photos} photo{'s' if photos != 1 else ''} with the case"
                       f" ({c['handler_photos']} with the handling)", className="muted"),
                dcc.Textarea(id={"type": "vf-reason", "ticket": tid}, className="note-field",
                             placeholder="What is still wrong (required to send it back)"),
                html.Div([
                    html.Button("Verify", id={"type": "vf-verify", "ticket": tid},
                                className="btn btn-resolved"),
                    html.Button("Send back for rework", id={"type": "vf-rework", "ticket": tid},
                                className="btn btn-cancelled"),
                ], className="buttons"),
            ],
            className=f"card card-{c['priority']}", id=f"vf-case-{tid}",
        ))
    return cards


def layout(ctx: AppContext) -> Component:
    """The handled cases waiting for the signed-in user's verification."""
    user = require_role(*ROLES)
    now = ctx.now()
    cases = read(ctx, user)
    return html.Div(
        [
            header("Verification", user, "/verify", updated=updated_label(now, ctx.tz)),
            html.Main(
                [
                    html.Div([html.P(_area(ctx, user), id="vf-area"),
                              html.Button("Refresh", id="vf-refresh", className="btn")],
                             className="toolbar"),
                    html.Div(id="vf-msg", role="status"),
                    html.Div(cards_view(cases, ctx, now), id="vf-list"),
                ],
                className="panel",
            ),
        ],
        className="page",
    )


callbacks = Callbacks()


@callbacks(
    Output("vf-msg", "children"),
    Output("vf-list", "children"),
    Output("updated", "children", allow_duplicate=True),
    Input({"type": "vf-verify", "ticket": ALL}, "n_clicks"),
    Input({"type": "vf-rework", "ticket": ALL}, "n_clicks"),
    Input("vf-refresh", "n_clicks"),
    State({"type": "vf-reason", "ticket": ALL}, "value"),
    prevent_initial_call=True,
)
def decide(verify_clicks: list[int | None], rework_clicks: list[int | None],
           _refresh: int | None, _reasons: list[str | None]) -> tuple[Any, ...]:
    """Verify or send back for rework (a reason required), and refresh on request."""
    user = require_role(*ROLES)
    trigger = dash.ctx.triggered_id
    if trigger is None:
        raise PreventUpdate
    ctx = context()
    message: Any = no_update
    if trigger != "vf-refresh":
        if not any(verify_clicks) and not any(rework_clicks):
            raise PreventUpdate  # the buttons were just drawn
        ticket_id = int(trigger["ticket"])
        reason = next((s.get("value") or "" for s in dash.ctx.states_list[0]
                       if s["id"]["ticket"] == ticket_id), "")
        try:
            text = verification.verify(ctx.db, user.user, ticket_id,
                                       trigger["type"] == "vf-verify", reason)
        except VerificationError as exc:
            return html.P(f"Not changed: {exc}.", className="error"), no_update, no_update
        message = html.P(text, className="ok")
    now = ctx.now()
    return message, cards_view(read(ctx, user), ctx, now), updated_label(now, ctx.tz)


PAGE = Page(pattern="/verify", roles=ROLES, layout=layout, callbacks=(callbacks,))

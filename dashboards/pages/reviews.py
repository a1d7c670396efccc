"""Bad reviews ``/reviews``: the ratings of 1 or 2 (好差评) to follow up, appeal and decide.

Operations, supervisors and administrators see the bad reviews of their centre's area (a street,
or the whole district); a grid worker sees only those of the cases they had (assigned to them or
handled by them). Each bad review shows its score, the rater's comment, the case (a link to
``/tickets/<id>``), when its follow-up is due (working days after the rating) and its state:
waiting, overdue, followed up, re-rated, appealed, appeal upheld or overturned. Per bad review:

- **Record follow-up**: what was fixed (required), by anyone on this page;
- **Appeal**: why the bad review is unfair (required), by operations or the case's grid worker;
- **Uphold** / **Overturn**: a supervisor or administrator decides a waiting appeal with a note.

The changes go through :mod:`cityops.cases.ratings`; a refusal is shown beside its bad review with
the reason, and nothing typed in any field is lost (the list is redrawn with what was typed). The
list's query is :func:`cityops.cases.reviews.bad_reviews`. No caller's name or phone is shown here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dash
from dash import ALL, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.cases import ratings, reviews
from cityops.cases.ratings import RatingError
from cityops.cases.reviews import ReviewError
from dashboards.components import badge, fmt_left, fmt_time, header, updated_label
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import WebUser, require_role

ROLES = reviews.ROLES
FIELDS = ("rv-note", "rv-reason", "rv-decision")  # the typed fields, per bad review
BUTTONS = {"rv-follow": "rv-note", "rv-appeal": "rv-reason", "rv-uphold": "rv-decision",
           "rv-overturn": "rv-decision"}  # button -> the field it reads
ACTIONS = {"rv-follow": "follow_up", "rv-appeal": "appeal", "rv-uphold": "uphold",
           "rv-overturn": "overturn"}
STATE_BADGES = {"waiting": "prio-normal", "overdue": "overdue-badge",
                "followed up": "st-resolved", "re-rated": "st-resolved",
                "appealed": "st-arrived", "appeal upheld": "prio-normal",
                "overturned": "st-resolved"}
FILTERS = [{"label": " Open (to follow up or decide)", "value": "open"},
           {"label": " All, with the settled ones", "value": "all"}]

Typed = dict[str, dict[int, str]]


def _area(user: WebUser) -> str:
    try:
        cell, worker = reviews.scope(user.user)
    except ReviewError as exc:
        return str(exc)
    if worker is not None:
        return "Bad reviews of the cases you had."
    if cell is None:
        return "Bad reviews of the whole district."
    return f"Bad reviews of the cases in {cell}."


def read(ctx: AppContext, user: WebUser, settled: bool = False) -> list[dict[str, Any]]:
    """The bad reviews the user acts on."""
    return reviews.read_bad_reviews(ctx.db, user.user, settled)


def _field(kind: str, rid: int, typed: Typed, placeholder: str) -> dcc.Textarea:
    return dcc.Textarea(id={"type": kind, "rating": rid}, className="note-field",
                        maxLength=2000, placeholder=placeholder,
                        value=typed.get(kind, {}).get(rid, ""))


def card(r: Mapping[str, Any], user: WebUser, ctx: AppContext, now: datetime, typed: Typed,
         message: Component | str = "") -> html.Article:
    """One bad review, what became of it, and the actions the user may take."""
    rid = r["id"]
    state, late = reviews.review_state(dict(r), now)
    lines = [*_story(r, state, late, ctx, now), *_actions(r, user, typed),
             html.Div(message, id={"type": "rv-row-msg", "rating": rid}, role="alert",
                      className="rv-row-msg")]
    urgency = "urgent" if late else "normal"
    return html.Article(lines, className=f"card card-{urgency}", id=f"rv-rating-{rid}")


def _story(r: Mapping[str, Any], state: str, late: bool, ctx: AppContext,
           now: datetime) -> list[Component]:
    """The bad review and what became of it: the follow-up, a new rating, the appeal."""
    tid = r["ticket_id"]
    days = ctx.settings.cases.bad_review_follow_up_days
    badges = [badge(f"{r['score']}/5", "prio-urgent" if r["score"] == 1 else "prio-normal"),
              badge(state, STATE_BADGES[state])]
    if late and state != "overdue":
        badges.append(badge("follow-up overdue", "overdue-badge"))
    if r["reminded"]:
        badges.append(html.Span("centre reminded", className="muted"))
    lines: list[Component] = [
        html.Div(badges, className="badges"),
        html.H2(dcc.Link(f"Case #{tid}: {r['title']}", href=f"/tickets/{tid}")),
        html.P([r["cell"] or "—", f" · rated {fmt_time(r['at'], ctx.tz, now)} ({r['channel']},"
                f" recorded by {r['recorded_by']})"], className="muted"),
        html.P([html.B("Comment: "), r["comment"] or "—"]),
    ]
    if r["followed_up_at"] is None and r["appeal_status"] != "overturned":
        lines.append(html.P([html.B("Follow up by "), fmt_time(r["follow_up_due_at"], ctx.tz, now),
                             f" ({days} working days after the rating;"
                             f" {fmt_left(r['follow_up_due_at'], now)})"],
                            className="rv-due late" if late else "rv-due"))
    else:
        lines.append(html.P(["Was due ", fmt_time(r["follow_up_due_at"], ctx.tz, now),
                             f" ({days} working days after the rating)"], className="muted"))
    if r["followed_up_at"] is not None:
        lines.append(html.P([html.B("Followed up "), f"by {r['followed_up_by']} at ",
                             fmt_time(r["followed_up_at"], ctx.tz, now), ": ",
                             r["follow_up_note"] or ""]))
    if r["rerated_at"] is not None:
        lines.append(html.P([html.B("Rated again: "), f"{r['rerated_score']}/5 at ",
                             fmt_time(r["rerated_at"], ctx.tz, now)]))
    if r["appeal_status"] is not None:
        decided = ""
        if r["appeal_decided_by"]:
            decided = (f" — decided by {r['appeal_decided_by']} at"
                       f" {fmt_time(r['appeal_decided_at'], ctx.tz, now)}")
        lines.append(html.P([html.B(f"Appeal ({r['appeal_status']}) "),
                             f"by {r['appealed_by']}: {r['appeal_reason']}{decided}"]))
    return lines


def _actions(r: Mapping[str, Any], user: WebUser, typed: Typed) -> list[Component]:
    """The fields and buttons of what the user may do with this bad review."""
    rid = r["id"]
    actions: list[Component] = []
    if r["followed_up_at"] is None and r["appeal_status"] != "overturned":
        actions += [_field("rv-note", rid, typed, "What was fixed (required for the follow-up)"),
                    html.Div(html.Button("Record follow-up", id={"type": "rv-follow",
                                                                 "rating": rid},
                                         className="btn btn-resolved"), className="buttons")]
    if r["appeal_status"] is None and user.role in ratings.APPELLANTS:
        actions += [_field("rv-reason", rid, typed, "Why the bad review is unfair (required to"
                                                    " appeal)"),
                    html.Div(html.Button("Appeal", id={"type": "rv-appeal", "rating": rid},
                                         className="btn"), className="buttons")]
    if r["appeal_status"] == "pending" and user.role in ratings.APPEAL_JUDGES:
        actions += [_field("rv-decision", rid, typed, "The reason for the decision (required)"),
                    html.Div([html.Button("Uphold (the bad review stands)",
                                          id={"type": "rv-uphold", "rating": rid},
                                          className="btn btn-cancelled"),
                              html.Button("Overturn (it does not count)",
                                          id={"type": "rv-overturn", "rating": rid},
                                          className="btn btn-resolved")],
                             className="buttons")]
    return actions


def cards_view(rows: Sequence[Mapping[str, Any]], user: WebUser, ctx: AppContext,
               now: datetime, typed: Typed | None = None,
               messages: Mapping[int, Component] | None = None) -> list[Component]:
    """One card per bad review (with what was typed, and a message beside one of them)."""
    if not rows:
        return [html.P("No bad reviews to act on.", className="empty")]
    typed = typed or {}
    messages = messages or {}
    return [card(r, user, ctx, now, typed, messages.get(r["id"], "")) for r in rows]


def layout(ctx: AppContext) -> Component:
    """The bad reviews the signed-in user acts on."""
    user = require_role(*ROLES)
    now = ctx.now()
    return html.Div(
        [
            header("Bad reviews", user, "/reviews", updated=updated_label(now, ctx.tz)),
            html.Main(
                [
                    html.Div([html.P(_area(user), id="rv-area"),
                              dcc.RadioItems(id="rv-filter", options=FILTERS, value="open",
                                             inline=True),
                              html.Button("Refresh", id="rv-refresh", className="btn")],
                             className="toolbar"),
                    html.P(f"A rating of 1 or 2 is a bad review: follow it up (what was fixed)"
                           f" within {ctx.settings.cases.bad_review_follow_up_days} working"
                           " days; the caller is then asked to rate again. The handling side"
                           " may appeal; a supervisor or an administrator decides.",
                           className="muted"),
                    html.Div(id="rv-msg", role="status"),
                    html.Div(cards_view(read(ctx, user), user, ctx, now), id="rv-list"),
                ],
                className="panel",
            ),
        ],
        className="page",
    )


def _typed(states: Sequence[Sequence[Mapping[str, Any]]]) -> Typed:
    """What is typed in every field of the page, by field and rating."""
    typed: Typed = {}
    for kind, group in zip(FIELDS, states, strict=True):
        typed[kind] = {int(s["id"]["rating"]): s.get("value") or "" for s in group}
    return typed


callbacks = Callbacks()


@callbacks(
    Output("rv-msg", "children"),
    Output("rv-list", "children"),
    Output({"type": "rv-row-msg", "rating": ALL}, "children"),
    Output("updated", "children", allow_duplicate=True),
    *[Input({"type": b, "rating": ALL}, "n_clicks") for b in BUTTONS],
    Input("rv-refresh", "n_clicks"),
    Input("rv-filter", "value"),
    *[State({"type": f, "rating": ALL}, "value") for f in FIELDS],
    prevent_initial_call=True,
)
def update(*args: Any) -> tuple[Any, ...]:
    """The four actions, the filter and refresh; a refusal is shown beside its bad review and
    keeps everything typed."""
    user = require_role(*ROLES)
    trigger = dash.ctx.triggered_id
    if trigger is None:
        raise PreventUpdate
    ctx = context()
    settled = args[len(BUTTONS) + 1] == "all"
    typed = _typed(dash.ctx.states_list)
    rows_shown = [int(o["id"]["rating"]) for o in dash.ctx.outputs_list[2]]
    message: Any = ""
    row_messages: dict[int, Component] = {}
    if isinstance(trigger, Mapping):
        if not dash.ctx.triggered[0].get("value"):
            raise PreventUpdate  # the buttons were just drawn
        button, rid = str(trigger["type"]), int(trigger["rating"])
        text = typed.get(BUTTONS[button], {}).get(rid, "")
        try:
            done = reviews.act_on_review(ctx.db, user.user, ACTIONS[button], rid, text)
        except RatingError as exc:
            refusal = html.P(f"Not done: {exc}.", className="error")
            return "", no_update, [refusal if r == rid else "" for r in rows_shown], no_update
        typed.get(BUTTONS[button], {}).pop(rid, None)  # done: that field is cleared
        message = html.P(done, className="ok")
        row_messages[rid] = html.P(done, className="ok")
    now = ctx.now()
    view = cards_view(read(ctx, user, settled), user, ctx, now, typed, row_messages)
    # the old cards' messages go with them (the redrawn cards carry their own)
    return message, view, [no_update] * len(rows_shown), updated_label(now, ctx.tz)


PAGE = Page(pattern="/reviews", roles=ROLES, layout=layout, callbacks=(callbacks,))

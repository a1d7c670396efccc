"""Civil affairs ``/civil``: elderly people living alone and their water-use alerts (30 days).

The only page with residents' names, phones and addresses; civil-affairs staff only, and every
view (the page, each refresh) is written to the audit log in the same transaction as the read.
Staff mark a household away or in hospital until a date here (no water-use alerts meanwhile),
or end the mark when the person is back; each change is audited too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.sensing import away
from cityops.views import civil
from dashboards.components import fmt_time, header, table
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import WebUser, require_role

ROLES = ("civil_affairs",)
DAYS = 30
ROWS = 100


def read_audited(ctx: AppContext, user: WebUser, now: datetime) -> dict[str, Any]:
    """The ranked household list, with the view written to the audit log."""
    return civil.view_elderly_alone(ctx.db, user.username, now, days=DAYS, limit=ROWS)


def table_view(rows: Sequence[Mapping[str, Any]], ctx: AppContext, now: datetime,
               marks: Mapping[str, away.Absence] | None = None) -> Component:
    """Households, those with the most water-use alerts first, with any away mark."""
    year = now.astimezone(ctx.tz).year
    marks = marks or {}
    return table(
        ["Name", "Age", "Address", "Phone", "Community", f"Water alerts ({DAYS} d)", "Open",
         "Last alert", "Away"],
        [
            [r["head_name"], str(year - r["birth_year"]) if r["birth_year"] else "—",
             r["address"], r["phone"] or "—", r["community"],
             html.B(str(r["water_alerts"])) if r["water_alerts"] else "0",
             str(r["open_alerts"]), fmt_time(r["last_alert_at"], ctx.tz, now),
             _away_text(marks.get(r["id"]), ctx)]
            for r in rows
        ],
        class_name="households",
    )


def _away_text(mark: away.Absence | None, ctx: AppContext) -> str:
    if mark is None:
        return "—"
    return f"{mark.reason} until {mark.until.astimezone(ctx.tz):%d %b %H:%M}"


def away_form(rows: Sequence[Mapping[str, Any]], ctx: AppContext, now: datetime) -> Component:
    """Mark a listed household away or in hospital until a date, or end its mark."""
    today = now.astimezone(ctx.tz).date()
    return html.Section(
        [
            html.H2("Away or in hospital"),
            html.P("No water-use alerts open for a marked household until the end of the last"
                   " day away.", className="muted"),
            dcc.Dropdown(id="civil-away-household", placeholder="Household",
                         options=[{"label": f"{r['head_name']} — {r['address']}",
                                   "value": r["id"]} for r in rows]),
            dcc.RadioItems(id="civil-away-reason", value="hospital", inline=True,
                           options=[{"label": " in hospital", "value": "hospital"},
                                    {"label": " away", "value": "away"}]),
            html.Label(["Last day away ",
                        dcc.DatePickerSingle(id="civil-away-until", min_date_allowed=today,
                                             date=today + timedelta(days=7))]),
            dcc.Input(id="civil-away-note", placeholder="Note (optional)", type="text"),
            html.Div([html.Button("Mark", id="civil-away-mark", className="btn"),
                      html.Button("Back home", id="civil-away-back", className="btn")],
                     className="buttons"),
            html.Div(id="civil-away-msg", role="status"),
        ],
        className="panel",
    )


def change_mark(ctx: AppContext, user: WebUser, household_id: str, back: bool, reason: str,
                last_day: date, note: str) -> str:
    """Set or end a household's away mark as ``user``; the sentence to show."""
    now = ctx.now()
    if back:
        ended = away.end_mark(ctx.db, household_id, user.username, now)
        return "Mark ended: alerts resume." if ended else "That household was not marked."
    until = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=ctx.tz)
    mark = away.set_mark(ctx.db, household_id, until, reason, user.username, now, note)
    return f"Marked {mark.reason} until {mark.until.astimezone(ctx.tz):%d %b %H:%M}."


def _summary(found: Mapping[str, Any], ctx: AppContext, now: datetime) -> str:
    shown = len(found["rows"])
    more = f" The {shown} with the most alerts are shown." if shown < found["total"] else ""
    return (f"{found['total']:,} elderly people living alone; {found['with_alerts']:,} with "
            f"water-use alerts in the last {DAYS} days.{more} Read "
            f"{fmt_time(now, ctx.tz, now, seconds=True)}; this view is recorded in the audit log.")


def layout(ctx: AppContext) -> Component:
    """The household list (each view audited)."""
    user = require_role(*ROLES)
    now = ctx.now()
    found = read_audited(ctx, user, now)
    return html.Div(
        [
            header("Elderly residents living alone", user, "/civil"),
            html.Main(
                [
                    html.Div([html.P(_summary(found, ctx, now), id="civil-summary"),
                              html.Button("Refresh", id="civil-refresh", className="btn")],
                             className="toolbar"),
                    html.Div(table_view(found["rows"], ctx, now, found["away"]),
                             id="civil-table"),
                ],
                className="panel",
            ),
            away_form(found["rows"], ctx, now),
        ],
        className="page",
    )


callbacks = Callbacks()


@callbacks(
    Output("civil-table", "children"),
    Output("civil-summary", "children"),
    Input("civil-refresh", "n_clicks"),
    prevent_initial_call=True,
)
def refresh(_clicks: int) -> tuple[Component, str]:
    """Refresh on request (no timer: every read of personal details is a recorded view)."""
    user = require_role(*ROLES)
    ctx = context()
    now = ctx.now()
    found = read_audited(ctx, user, now)
    return table_view(found["rows"], ctx, now, found["away"]), _summary(found, ctx, now)


@callbacks(
    Output("civil-away-msg", "children"),
    Output("civil-table", "children", allow_duplicate=True),
    Input("civil-away-mark", "n_clicks"),
    Input("civil-away-back", "n_clicks"),
    State("civil-away-household", "value"),
    State("civil-away-reason", "value"),
    State("civil-away-until", "date"),
    State("civil-away-note", "value"),
    prevent_initial_call=True,
)
def mark(_mark: int | None, _back: int | None, household_id: str | None, reason: str,
         until: str | None, note: str | None) -> tuple[Component, Component]:
    """Mark a household away or in hospital until a date, or end its mark (audited)."""
    user = require_role(*ROLES)
    trigger = dash.ctx.triggered_id
    if trigger is None:
        raise PreventUpdate
    if not household_id or (trigger == "civil-away-mark" and not until):
        return html.P("Choose a household and the last day away.", className="error"), (
            dash.no_update)
    ctx = context()
    last_day = date.fromisoformat(str(until)[:10]) if until else ctx.now().date()
    try:
        text = change_mark(ctx, user, household_id, trigger == "civil-away-back", reason,
                           last_day, note or "")
    except away.AbsenceError as exc:
        return html.P(f"Not changed: {exc}.", className="error"), dash.no_update
    now = ctx.now()
    found = read_audited(ctx, user, now)
    return html.P(text, className="ok"), table_view(found["rows"], ctx, now, found["away"])


PAGE = Page(pattern="/civil", roles=ROLES, layout=layout, callbacks=(callbacks,))

"""Civil affairs ``/civil``: elderly people living alone and their water-use alerts (30 days).

The only page with residents' names, phones and addresses; civil-affairs staff only, and every
view (the page, each refresh) is written to the audit log in the same transaction as the read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dash import Dash, Input, Output, html
from dash.development.base_component import Component

from cityops import queries, users
from dashboards.auth import WebUser, require_role
from dashboards.components import fmt_time, header, table
from dashboards.context import AppContext, Page

ROLES = ("civil_affairs",)
DAYS = 30
ROWS = 100


def read_audited(ctx: AppContext, user: WebUser, now: datetime) -> dict[str, Any]:
    """The ranked household list, with the view written to the audit log."""
    with ctx.pool.connection() as conn:  # one transaction: the read and its audit record
        found = queries.elderly_alone_water_alerts(conn, now, days=DAYS, limit=ROWS)
        users.audit(conn, user.username, "view", "households.elderly_alone",
                    {"households": [r["id"] for r in found["rows"]], "days": DAYS})
    return found


def table_view(rows: Sequence[Mapping[str, Any]], ctx: AppContext, now: datetime) -> Component:
    """Households, those with the most water-use alerts first."""
    year = now.astimezone(ctx.tz).year
    return table(
        ["Name", "Age", "Address", "Phone", "Community", f"Water alerts ({DAYS} d)", "Open",
         "Last alert"],
        [
            [r["head_name"], str(year - r["birth_year"]) if r["birth_year"] else "—",
             r["address"], r["phone"] or "—", r["community"],
             html.B(str(r["water_alerts"])) if r["water_alerts"] else "0",
             str(r["open_alerts"]), fmt_time(r["last_alert_at"], ctx.tz, now)]
            for r in rows
        ],
        class_name="households",
    )


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
                    html.Div(table_view(found["rows"], ctx, now), id="civil-table"),
                ],
                className="panel",
            ),
        ],
        className="page",
    )


def register(app: Dash, ctx: AppContext) -> None:
    """Refresh on request (no timer: every read of personal details is a recorded view)."""

    @app.callback(
        Output("civil-table", "children"),
        Output("civil-summary", "children"),
        Input("civil-refresh", "n_clicks"),
        prevent_initial_call=True,
    )
    def refresh(_clicks: int) -> tuple[Component, str]:
        user = require_role(*ROLES)
        now = ctx.now()
        found = read_audited(ctx, user, now)
        return table_view(found["rows"], ctx, now), _summary(found, ctx, now)


PAGE = Page(pattern="/civil", roles=ROLES, layout=layout, register=register)

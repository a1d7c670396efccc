"""The wall screen's strip of case metrics: the cases reported in the last 7 days (a rolling 168
hours), their closure rate, on-time handling rate, satisfaction rate and count, each rate with its
numerator / denominator. It refreshes itself every minute (the figures move slowly).

The wall inserts :func:`wall_metrics_panel` in its layout and attaches :data:`callbacks`; the
definitions are those of :mod:`cityops.cases.metrics` (docs/cases.md, "Metrics"), the
same as the report page's. Styles: assets/metrics.css.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from dash import Input, Output, dcc, html
from dash.development.base_component import Component

from cityops.cases.metrics import MetricsRow, Rate, read_metrics
from dashboards.context import AppContext, Callbacks, context
from dashboards.users import require_role

PANEL_ID = "wall-metrics"
REFRESH_MS = 60_000
DAYS = 7
ROLES = ("operations", "admin")


def read(ctx: AppContext, now: datetime) -> MetricsRow:
    """The metrics of every case reported in the last :data:`DAYS` days."""
    return read_metrics(ctx.db, start=now - timedelta(days=DAYS), end=now, group_by="all")[1]


def _rate(label: str, rate: Rate, ident: str) -> html.Div:
    return html.Div(
        [html.Span(label, className="wm-label"),
         html.Span(rate.percent(), className="wm-value", id=ident),
         html.Span(f"{rate.numerator} / {rate.denominator}", className="wm-nd")],
        className="wm-item", title=f"{rate.numerator} of {rate.denominator} cases",
    )


def strip(row: MetricsRow) -> list[Component]:
    """The strip's contents."""
    return [
        html.Span(f"Last {DAYS} days", className="wm-title"),
        _rate("Closed", row.closure, "wm-closure"),
        _rate("Handled on time", row.on_time_handling, "wm-handling"),
        _rate("Satisfied", row.satisfaction, "wm-satisfaction"),
        html.Div([html.Span("Cases reported", className="wm-label"),
                  html.Span(f"{row.reported:,}", className="wm-value", id="wm-reported")],
                 className="wm-item"),
    ]


def wall_metrics_panel(ctx: AppContext, now: datetime) -> Component:
    """The strip with current figures and its own timer (put it in the wall's layout)."""
    return html.Section(
        [html.Div(strip(read(ctx, now)), id=PANEL_ID, className="wm-strip"),
         dcc.Interval(id=f"{PANEL_ID}-tick", interval=REFRESH_MS)],
        className="panel wall-metrics",
    )


callbacks = Callbacks()


@callbacks(
    Output(PANEL_ID, "children"),
    Input(f"{PANEL_ID}-tick", "n_intervals"),
    prevent_initial_call=True,
)
def refresh(_tick: int | None) -> list[Component]:
    """The strip's own refresh."""
    require_role(*ROLES)
    ctx = context()
    return strip(read(ctx, ctx.now()))

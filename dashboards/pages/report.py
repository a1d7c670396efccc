"""Case metrics report ``/report``: the metrics of the cases reported in a period, per grid,
street, district, unit or category, with a total row, and the same table as a CSV download.

The period is a range of the district's local dates, both included (presets: today, the last 7
and 30 days, this year). Each rate shows its numerator and denominator under it (and on hover);
the definitions are in docs/cases.md, "Metrics". For operations, supervisors and administrators.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from dash import Input, Output, State, callback_context, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.cases.categories import Catalogue, load_categories
from cityops.cases.metrics import (
    GROUP_NAMES,
    RATES,
    STAGE_NAMES,
    STAGES,
    MetricsRow,
    Rate,
    metrics_csv,
    read_metrics,
)
from cityops.platform.text import duration_text
from dashboards.components import header, updated_label
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import require_role

ROLES = ("operations", "admin", "supervisor")
GROUPINGS = ("grid", "street", "district", "unit", "category")
DEFAULT_GROUP = "street"
PRESETS = {"report-today": 1, "report-7d": 7, "report-30d": 30, "report-year": None}
SHORT_RATES = {
    "registration": "Registered", "closure": "Closed", "on_time_closure": "Closed on time",
    "on_time_handling": "Handled on time", "rework": "Rework", "postponement": "Postponed",
    "satisfaction": "Satisfied",
}


class PeriodError(ValueError):
    """The dates asked for do not make a period."""


def preset_dates(preset: str, today: date) -> tuple[date, date]:
    """First and last day (both included) of a preset period ending today."""
    days = PRESETS[preset]
    if days is None:
        return date(today.year, 1, 1), today
    return today - timedelta(days=days - 1), today


def period(ctx: AppContext, first: str | None, last: str | None) -> tuple[
    date, date, datetime, datetime
]:
    """The local dates (``YYYY-MM-DD``, both included) and the instants ``[start, end)``."""
    try:
        day0, day1 = date.fromisoformat(first or ""), date.fromisoformat(last or "")
    except ValueError:
        raise PeriodError("Choose a first and a last day.") from None
    if day1 < day0:
        raise PeriodError("The last day is before the first day.")
    start = datetime.combine(day0, time(0), ctx.tz)
    end = datetime.combine(day1 + timedelta(days=1), time(0), ctx.tz)
    return day0, day1, start, end


def _catalogue(ctx: AppContext) -> Catalogue:
    return load_categories(ctx.settings.cases.categories_file)


def read(ctx: AppContext, start: datetime, end: datetime, group_by: str) -> tuple[
    list[MetricsRow], MetricsRow
]:
    """The rows of a grouping and the total row."""
    if group_by not in GROUPINGS:
        raise PeriodError(f"Unknown grouping {group_by!r}.")
    catalogue = _catalogue(ctx) if group_by == "category" else None
    return read_metrics(ctx.db, start=start, end=end, group_by=group_by,  # type: ignore[arg-type]
                        categories=catalogue)


def _rate_cell(rate: Rate) -> html.Td:
    detail = f"{rate.numerator} / {rate.denominator}"
    return html.Td([html.Div(rate.percent(), className="rate"),
                    html.Div(detail, className="nd")],
                   title=f"{rate.numerator} of {rate.denominator}", className="num")


def _row(row: MetricsRow, total: bool = False) -> html.Tr:
    name: list[Component | str] = [row.label]
    if row.key and row.key not in row.label:
        name.append(html.Div(row.key, className="nd"))
    cells = [html.Td(name, className="name"), html.Td(f"{row.reported:,}", className="num"),
             html.Td(f"{row.duplicates:,}", className="num")]
    cells += [_rate_cell(row.rate(key)) for key in RATES]
    for stage in row.stages:
        text = "—" if stage.median_s is None else duration_text(stage.median_s)
        cells.append(html.Td([html.Div(text), html.Div(f"({stage.cases})", className="nd")],
                             title=f"median of {stage.cases} cases", className="num"))
    return html.Tr(cells, className="total" if total else None)


def table_view(rows: Sequence[MetricsRow], total: MetricsRow, group_by: str) -> Component:
    """The metrics table: a row per group, then the total."""
    head = [html.Th(GROUP_NAMES[group_by]), html.Th("Reported", title="duplicates left out"),
            html.Th("Dupl.", title="linked as duplicates of another case: left out")]
    head += [html.Th(SHORT_RATES[key], title=heading) for key, heading in RATES.items()]
    head += [html.Th(f"→ {STAGE_NAMES[b]}", title=f"median time from {STAGE_NAMES[a]} to"
                     f" {STAGE_NAMES[b]}") for a, b in STAGES]
    groups = html.Tr([html.Th("", colSpan=3),
                      html.Th("Rates (numerator / denominator)", colSpan=len(RATES),
                              className="group"),
                      html.Th("Median time per stage (cases)", colSpan=len(STAGES),
                              className="group")])
    body = [_row(r) for r in rows]
    if not rows:
        body.append(html.Tr(html.Td("No case was reported in this period.",
                                    colSpan=len(head), className="muted")))
    body.append(_row(total, total=True))
    return html.Div(
        html.Table([html.Thead([groups, html.Tr(head)]), html.Tbody(body)],
                   className="table metrics-table"),
        className="metrics-scroll",
    )


def content(ctx: AppContext, first: str | None, last: str | None, group_by: str) -> Component:
    """The table of a period and grouping, or what is wrong with the choice."""
    try:
        day0, day1, start, end = period(ctx, first, last)
        rows, total = read(ctx, start, end, group_by)
    except PeriodError as exc:
        return html.P(str(exc), className="error")
    days = (day1 - day0).days + 1
    caption = html.P(
        f"Cases reported {day0:%d %b %Y} to {day1:%d %b %Y} ({days} day{'s' * (days != 1)},"
        f" {ctx.tz.key} time), by {GROUP_NAMES[group_by].lower()}. Each rate: numerator /"
        " denominator under it; times are medians from the first time each state was reached."
        " Definitions: docs/cases.md, Metrics.",
        className="muted",
    )
    return html.Div([caption, table_view(rows, total, group_by)])


def layout(ctx: AppContext) -> Component:
    """The report with the last 7 days by street."""
    user = require_role(*ROLES)
    now = ctx.now()
    first, last = preset_dates("report-7d", now.astimezone(ctx.tz).date())
    controls = html.Div(
        [
            html.Label(["From ", dcc.DatePickerSingle(
                id="report-from", date=first.isoformat(), display_format="YYYY-MM-DD",
                first_day_of_week=1, clearable=False)]),
            html.Label(["To ", dcc.DatePickerSingle(
                id="report-to", date=last.isoformat(), display_format="YYYY-MM-DD",
                first_day_of_week=1, clearable=False)]),
            html.Div([html.Button("Today", id="report-today", className="btn btn-dispatched"),
                      html.Button("7 days", id="report-7d", className="btn btn-dispatched"),
                      html.Button("30 days", id="report-30d", className="btn btn-dispatched"),
                      html.Button("This year", id="report-year",
                                  className="btn btn-dispatched")],
                     className="buttons"),
            html.Label(["Group by ", dcc.Dropdown(
                id="report-group", value=DEFAULT_GROUP, clearable=False, searchable=False,
                options=[{"label": GROUP_NAMES[g], "value": g} for g in GROUPINGS],
                className="report-group")]),
            html.Button("Download CSV", id="report-csv", className="btn"),
            dcc.Download(id="report-download"),
        ],
        className="report-controls",
    )
    return html.Div(
        [
            header("Case metrics", user, "/report", updated=updated_label(now, ctx.tz)),
            html.Main(
                [html.Section([controls,
                               dcc.Loading(html.Div(content(ctx, first.isoformat(),
                                                            last.isoformat(), DEFAULT_GROUP),
                                                    id="report-table"))],
                              className="panel")],
            ),
        ],
        className="page report-page",
    )


callbacks = Callbacks()


@callbacks(
    Output("report-from", "date"),
    Output("report-to", "date"),
    *(Input(button, "n_clicks") for button in PRESETS),
    prevent_initial_call=True,
)
def preset(*_clicks: int | None) -> tuple[str, str]:
    """A preset period: the dates it spans."""
    require_role(*ROLES)
    button = callback_context.triggered_id
    if button not in PRESETS:
        raise PreventUpdate
    ctx = context()
    first, last = preset_dates(button, ctx.now().astimezone(ctx.tz).date())
    return first.isoformat(), last.isoformat()


@callbacks(
    Output("report-table", "children"),
    Output("updated", "children", allow_duplicate=True),
    Input("report-from", "date"),
    Input("report-to", "date"),
    Input("report-group", "value"),
    prevent_initial_call=True,
)
def show(first: str | None, last: str | None, group_by: str) -> tuple[Component, str]:
    """The table of the period and grouping chosen."""
    require_role(*ROLES)
    ctx = context()
    return content(ctx, first, last, group_by), updated_label(ctx.now(), ctx.tz)


@callbacks(
    Output("report-download", "data"),
    Input("report-csv", "n_clicks"),
    State("report-from", "date"),
    State("report-to", "date"),
    State("report-group", "value"),
    prevent_initial_call=True,
)
def download(clicks: int | None, first: str | None, last: str | None,
             group_by: str) -> dict[str, Any]:
    """The same table as a CSV file."""
    require_role(*ROLES)
    if not clicks:
        raise PreventUpdate
    ctx = context()
    try:
        day0, day1, start, end = period(ctx, first, last)
        rows, total = read(ctx, start, end, group_by)
    except PeriodError:
        raise PreventUpdate from None
    return dcc.send_bytes(
        metrics_csv([*rows, total]),
        f"case-metrics-{group_by}-{day0.isoformat()}-to-{day1.isoformat()}.csv",
        type="text/csv",
    )


PAGE = Page(pattern="/report", roles=ROLES, layout=layout, callbacks=(callbacks,))

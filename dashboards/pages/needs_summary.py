"""Needs: the district summary ``/needs/summary`` (civil affairs; docs/needs.md).

The Alkire-Foster figures of the district (households, identified, H, A, M0) from each
household's latest assessment, broken down by street, community or household type, and what
each indicator contributes to M0. Aggregates only, no names; still civil-affairs staff only, and
every view (the page, each change of breakdown) is written to the audit log in the same
transaction as the read.
"""

from __future__ import annotations

from fractions import Fraction

import plotly.graph_objects as go
from dash import Input, Output, dcc, html
from dash.development.base_component import Component

from cityops.needs import summary as needs_summary
from cityops.needs.summary import BREAKDOWN_LABELS, Breakdown, DistrictSummary, Figures
from dashboards.components import FOREGROUND, header, table, updated_label
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import require_role

ROLES = ("civil_affairs",)
PATH = "/needs/summary"
DEFAULT: Breakdown = "street"
# one colour per dimension, in the indicator set's order
DIMENSION_COLOURS = ("#4dabf7", "#ff922b", "#ff6b6b", "#ffd43b", "#51cf66", "#cc5de8",
                     "#20c997", "#adb5bd")
GRID = "#22355a"
GRAPH_CONFIG = {"displaylogo": False}
CHART_GROUPS = 30  # groups drawn in the M0 chart (the table lists all)


def _decimal(value: Fraction, digits: int = 4) -> html.Span:
    """A figure as a decimal, its exact fraction on hover."""
    return html.Span(f"{float(value):.{digits}f}", title=f"exactly {value}")


def _percent(value: Fraction) -> html.Span:
    return html.Span(f"{float(value):.1f} %", title=f"exactly {value} %")


def _colours(summary: DistrictSummary) -> dict[str, str]:
    return {dim: DIMENSION_COLOURS[i % len(DIMENSION_COLOURS)]
            for i, dim in enumerate(summary.dimension_labels)}


def _style(figure: go.Figure, height: int) -> go.Figure:
    figure.update_layout(
        height=height, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font={"color": FOREGROUND, "size": 15}, margin={"l": 10, "r": 20, "t": 40, "b": 10},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
        hoverlabel={"font": {"size": 16}},
    )
    figure.update_xaxes(gridcolor=GRID, zerolinecolor=GRID, automargin=True)
    figure.update_yaxes(gridcolor=GRID, zerolinecolor=GRID, automargin=True)
    return figure


def indicator_chart(summary: DistrictSummary) -> go.Figure:
    """Each indicator's share of the district's M0 (%), a bar per indicator coloured by its
    dimension, the indicators in the set's order from the top."""
    colours = _colours(summary)
    indicators = summary.district.indicators
    figure = go.Figure([
        go.Bar(
            name=label, orientation="h", marker={"color": colours[dim]},
            y=[i.label for i in indicators if i.dimension == dim],
            x=[float(i.contribution_pct) for i in indicators if i.dimension == dim],
            customdata=[[float(i.censored_ratio), str(i.weight)]
                        for i in indicators if i.dimension == dim],
            hovertemplate=("%{y}<br>%{x:.1f} % of M0<br>censored headcount ratio "
                           "%{customdata[0]:.4f}, weight %{customdata[1]}<extra></extra>"),
        )
        for dim, label in summary.dimension_labels.items()
    ])
    figure.update_yaxes(categoryorder="array",
                        categoryarray=[i.label for i in reversed(indicators)])
    figure.update_xaxes(title_text="share of the district's M0 (%)", ticksuffix=" %")
    return _style(figure, 140 + 30 * len(indicators))


def group_chart(summary: DistrictSummary) -> go.Figure:
    """M0 of the groups with the highest M0 (at most ``CHART_GROUPS``, highest at the top), each
    a bar stacked by dimension: what drives it."""
    colours = _colours(summary)
    groups = _ranked(summary)[:CHART_GROUPS]
    parts = [g.m0_by_dimension() for g in groups]
    figure = go.Figure([
        go.Bar(
            name=label, orientation="h", marker={"color": colours[dim]},
            y=[g.label for g in groups], x=[float(p.get(dim, 0)) for p in parts],
            customdata=[float(p.get(dim, 0) / g.M0 * 100) if g.M0 else 0.0
                        for g, p in zip(groups, parts, strict=True)],
            hovertemplate=(f"%{{y}}<br>{label}: %{{x:.4f}} of M0 "
                           "(%{customdata:.1f} %)<extra></extra>"),
        )
        for dim, label in summary.dimension_labels.items()
    ])
    figure.update_layout(barmode="stack")
    figure.update_yaxes(categoryorder="array", categoryarray=[g.label for g in reversed(groups)])
    figure.update_xaxes(title_text="M0, stacked by dimension")
    return _style(figure, 160 + 30 * len(groups))


def _ranked(summary: DistrictSummary) -> list[Figures]:
    return sorted(summary.groups, key=lambda g: (-g.M0, g.label))


def groups_table(summary: DistrictSummary) -> Component:
    """One row per group: households, identified, H, A, M0 and its share of the district's M0."""
    return table(
        [BREAKDOWN_LABELS[summary.breakdown].capitalize(), "Households", "Share of households",
         "Identified", "H", "A", "M0", "Share of district M0"],
        [[g.label, f"{g.n:,}", _percent(g.population_share * 100), f"{g.identified:,}",
          _decimal(g.H), _decimal(g.A), _decimal(g.M0), _percent(g.contribution_pct)]
         for g in _ranked(summary)],
        class_name="needs-summary-groups",
    )


def groups_view(summary: DistrictSummary) -> Component:
    """The breakdown's table and its M0 chart."""
    what = BREAKDOWN_LABELS[summary.breakdown]
    shown = (f"The {CHART_GROUPS} with the highest M0 of {len(summary.groups)} are drawn; the "
             "table has all. " if len(summary.groups) > CHART_GROUPS else "")
    return html.Div([
        groups_table(summary),
        html.H3(f"M0 by {what}, split by dimension"),
        html.P(f"Each bar is a {what}'s M0; its coloured parts are what each dimension adds. "
               f"{shown}Hover for the figures.", className="muted"),
        dcc.Graph(id="needs-summary-group-chart", figure=group_chart(summary),
                  config=GRAPH_CONFIG),
    ])


def indicators_table(summary: DistrictSummary) -> Component:
    """The indicators with their weights, headcount ratios and shares of M0."""
    labels = summary.dimension_labels
    return table(
        ["Indicator", "Dimension", "Weight", "Deprived (uncensored)",
         "Identified and deprived (censored)", "Share of M0"],
        [[i.label, labels[i.dimension], str(i.weight), _decimal(i.uncensored_ratio),
          _decimal(i.censored_ratio), _percent(i.contribution_pct)]
         for i in summary.district.indicators],
        class_name="needs-summary-indicators",
    )


def _tile(label: str, value: Component | str, exact: str = "") -> html.Div:
    return html.Div([html.Div(label, className="tile-label"),
                     html.Div(value, className="tile-value", style={"fontSize": "40px"}),
                     html.Div(exact, className="tile-details")], className="tile")


def district_tiles(d: Figures) -> Component:
    """The district's n, identified, H, A and M0 (decimals, the exact fraction beside)."""
    return html.Div(
        [_tile("Households", f"{d.n:,}"), _tile("Identified", f"{d.identified:,}"),
         _tile("H (share identified)", _decimal(d.H), f"= {d.H}"),
         _tile("A (intensity)", _decimal(d.A), f"= {d.A}"),
         _tile("M0 = H × A", _decimal(d.M0), f"= {d.M0}")],
        className="vitals", id="needs-summary-district",
        style={"gridTemplateColumns": "repeat(5, minmax(0, 1fr))"},
    )


def _intro(summary: DistrictSummary, ctx: AppContext) -> list[Component]:
    scored = (f"; newest score {summary.scored_at.astimezone(ctx.tz):%d %b %Y %H:%M}"
              if summary.scored_at else "")
    out: list[Component] = [html.P(
        f"Alkire-Foster index from each household's latest assessment (indicator set "
        f"{summary.version}, identified when c ≥ k = {summary.k}{scored}). Hover over a "
        "figure for its exact fraction. Aggregates only; this view is recorded in the audit "
        "log.", className="muted")]
    if summary.skipped:
        out.append(html.P(
            f"{summary.skipped:,} household(s) whose latest assessment is on another "
            f"indicator-set version are left out: run `cityops needs score` to score them on "
            f"{summary.version}.", className="error"))
    return out


def _empty(summary: DistrictSummary, ctx: AppContext) -> Component:
    return html.Main(html.Section(
        [html.P(f"No household has an assessment on indicator set {summary.version} yet. "
                "Score the district with `cityops needs score`, then reload this page.",
                id="needs-summary-empty"),
         *_intro(summary, ctx)[1:]],
        className="panel"))


def _body(summary: DistrictSummary, ctx: AppContext) -> Component:
    options = [{"label": f" {label}", "value": value}
               for value, label in BREAKDOWN_LABELS.items()]
    return html.Main([
        html.Section([*_intro(summary, ctx), district_tiles(summary.district)],
                     className="panel"),
        html.Section([
            html.Div([html.H2("Groups"),
                      dcc.RadioItems(id="needs-summary-breakdown", options=options,
                                     value=summary.breakdown, inline=True,
                                     labelStyle={"marginRight": "18px"})],
                     className="toolbar"),
            html.Div(groups_view(summary), id="needs-summary-groups"),
        ], className="panel"),
        html.Section([
            html.H2("What drives M0: the indicators"),
            html.P("Each indicator's share of the district's M0 (weight × censored headcount "
                   "ratio / M0; the shares add up to 100 %).", className="muted"),
            dcc.Graph(id="needs-summary-indicator-chart", figure=indicator_chart(summary),
                      config=GRAPH_CONFIG),
            indicators_table(summary),
        ], className="panel"),
    ])


def layout(ctx: AppContext) -> Component:
    """The district's figures, broken down by street (each view audited)."""
    user = require_role(*ROLES)
    now = ctx.now()
    try:
        summary = needs_summary.view_summary(ctx.db, user.username, DEFAULT)
    except needs_summary.SummaryError as exc:
        main: Component = html.Main(html.P(str(exc), className="error"))
    else:
        main = _empty(summary, ctx) if summary.empty else _body(summary, ctx)
    return html.Div(
        [header("Needs: district summary", user, PATH,
                updated=updated_label(now, ctx.tz, "Read")), main],
        className="page",
    )


callbacks = Callbacks()


@callbacks(
    Output("needs-summary-groups", "children"),
    Input("needs-summary-breakdown", "value"),
    prevent_initial_call=True,
)
def switch_breakdown(value: str | None) -> Component:
    """Another breakdown on request (each a recorded view)."""
    user = require_role(*ROLES)
    breakdown = next((b for b in BREAKDOWN_LABELS if b == value), None)
    if breakdown is None:
        return html.P(f"Choose one of: {', '.join(BREAKDOWN_LABELS.values())}.",
                      className="error")
    try:
        return groups_view(needs_summary.view_summary(context().db, user.username, breakdown))
    except needs_summary.SummaryError as exc:
        return html.P(str(exc), className="error")


PAGE = Page(pattern=PATH, roles=ROLES, layout=layout, callbacks=(callbacks,))

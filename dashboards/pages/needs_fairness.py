"""Civil affairs ``/needs/fairness``: who the needs scoring identifies, who was approved, and how
well the model's probabilities match past decisions, by the head's age band and sex, hukou and
disability (``cityops.needs.fairness``; docs/needs.md, "Fairness").

Aggregates only, but computed from households' personal data: civil-affairs staff only, and each
view is written to the audit log in the same transaction as the read. The simulation's hidden
true need is never shown here: calibration is against past decisions, which are biased.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

from cityops.needs import fairness as needs_fairness
from cityops.needs.fairness import ATTRIBUTES, MIN_DECIDED, FairnessData, SubgroupFigures
from dashboards.components import fmt_time, header, table
from dashboards.context import AppContext, Page
from dashboards.users import require_role

ROLES = ("civil_affairs",)
PATH = "/needs/fairness"
COLUMNS = ["Group", "Households", "Identified by the index", "Approved (of all)", "Decided",
           "Approved (of decided)", "Model: mean probability", "Observed approval rate", "Gap",
           "Calibration error (ECE)"]


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.1%}"


def _row(r: SubgroupFigures) -> list[str]:
    c = r.calibration
    if c is None:
        model = ["no model", "", "", ""]
    elif c.too_few:
        model = [f"too few to judge ({c.n} decided)", "", "", ""]
    else:
        model = [f"{c.mean_predicted:.3f}", f"{c.observed:.3f}", f"{c.gap:+.3f}", f"{c.ece:.3f}"]
    return [r.label, f"{r.n:,}", _pct(r.identified), _pct(r.approved), f"{r.decided:,}",
            _pct(r.approved_of_decided), *model]


def chart(rows: Sequence[SubgroupFigures]) -> go.Figure:
    """Share identified by the index beside share approved, per group (grouped bars)."""
    groups = [r for r in rows if r.attribute != "all"]
    x = [[r.attribute for r in groups], ["<br>".join(textwrap.wrap(r.label, 14)) for r in groups]]
    figure = go.Figure([
        go.Bar(x=x, y=[r.identified for r in groups], name="identified by the index",
               marker_color="#74c0fc"),
        go.Bar(x=x, y=[r.approved for r in groups], name="approved in past decisions",
               marker_color="#ffd43b"),
    ])
    figure.update_layout(height=340, barmode="group", yaxis_tickformat=".1%",
                         xaxis_tickangle=0, margin={"l": 50, "r": 10, "t": 10, "b": 90},
                         legend={"orientation": "h", "y": 1.12}, font={"color": "#e8eef6"},
                         paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    return figure


EXPLANATION = [
    html.P("Protected attributes (the head's age band and sex, hukou) are never model features"
           " or cutoffs of the scoring: they are kept only for this report. Disability is the"
           " indicator \"a member with a disability\", one of the index's 22 indicators."),
    html.P("Approved: the household's latest decision is approved or visited and helped."
           " Decided: approved or declined (a visit still scheduled is not a decision)."),
    html.P("Past decisions show who was served, not who was in need: people who never applied"
           " are missing from them. So the model's calibration here is measured against past"
           " decisions, which are biased; and the model learned from these same decisions, so"
           " a small gap says the model matches the caseworkers, not that it finds need."
           f" Groups with fewer than {MIN_DECIDED} decided households are too few to judge."
           " The gap is the mean probability minus the observed approval rate; the calibration"
           " error (ECE) averages that difference over ten probability bins."),
]


def report_view(data: FairnessData, ctx: AppContext, now: datetime) -> list[Component]:
    """The summary, the chart and one table per attribute."""
    rows = data.report()
    overall = rows[0]
    model = ("model probabilities from the latest assessment" if overall.calibration
             else "no model probabilities (the latest scoring had too few past decisions)")
    summary = (f"{overall.n:,} households assessed (latest assessment "
               f"{fmt_time(data.assessed_at, ctx.tz, now)}); {overall.decided:,} with a past"
               f" decision; {model}.")
    if data.not_assessed:
        summary += (f" {data.not_assessed:,} households have no assessment yet: run"
                    " `cityops needs score`.")
    tables: list[Component] = []
    for attribute in ATTRIBUTES:
        tables += [html.H3(attribute.capitalize()),
                   table(COLUMNS, [_row(r) for r in rows if r.attribute == attribute],
                         class_name=f"fairness-{attribute.replace(' ', '-')}")]
    return [
        html.Section([html.P(summary, id="fairness-summary"),
                      table(COLUMNS, [_row(overall)], class_name="fairness-all")],
                     className="panel"),
        html.Section([html.H2("Identified and approved, by group"),
                      dcc.Graph(id="fairness-chart", figure=chart(rows),
                                config={"displayModeBar": False, "staticPlot": True})],
                     className="panel"),
        html.Section([html.H2("By group"), *tables], className="panel"),
    ]


def layout(ctx: AppContext) -> Component:
    """The fairness report (each view audited)."""
    user = require_role(*ROLES)
    now = ctx.now()
    data = needs_fairness.view_fairness(ctx.db, user.username)
    if len(data):
        body = report_view(data, ctx, now)
    else:
        body = [html.Section(html.P(
            "No assessment yet: run `cityops needs score` to score the households, then open"
            " this page again.", id="fairness-summary"), className="panel")]
    return html.Div(
        [header("Fairness of the needs scoring", user, PATH),
         *body,
         html.Section([html.H2("How to read this"), *EXPLANATION], className="panel")],
        className="page",
    )


# No callbacks: the page is read once per view (each read is recorded).
PAGE = Page(pattern=PATH, roles=ROLES, layout=layout)

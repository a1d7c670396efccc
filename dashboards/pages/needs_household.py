"""One household's needs case ``/needs/household/<id>``: civil-affairs staff see why it may need
assistance and record a decision with its reason (docs/needs.md, "The household page").

Shown: the household (no protected attribute: those are for fairness reporting only), the latest
assessment (the index first, the model as a second opinion), the indicators by dimension, the
assessment and decision histories, the assistance received and the review tasks. Every view (the
page, each refresh, the redraw after a decision) is written to the audit log in the same
transaction as the read; every decision too (:mod:`cityops.needs.household`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dash import Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.needs import household as nh
from cityops.needs.labels import PROGRAMMES
from dashboards.components import badge, fmt_time, header, table, updated_label
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import require_role

ROLES = ("civil_affairs",)
HERE = "/needs"
MODEL_WARNING = ("Past decisions show who was served, not who was in need: the model is a second"
                 " opinion, the index is the primary score.")
CHOICES = {"approved": "Approve", "declined": "Decline", "visit_scheduled": "Schedule a visit",
           "visited_helped": "Visited and helped"}


def _fact(label: str, value: Any) -> html.Div:
    return html.Div([html.Dt(label), html.Dd(value)], className="fact")


def _money(value: Any) -> str:
    return f"{float(value):,.0f} CNY"


def _share(value: float) -> str:
    return f"{value * 100:.0f} % of income"


def summary_view(case: nh.HouseholdCase) -> html.Section:
    """Who and where, the household type, its achievements and its assistance."""
    facts = [
        _fact("Name", case.head_name),
        _fact("Address", case.address),
        _fact("Phone", case.phone or "—"),
        _fact("Members", str(case.members)),
        _fact("Head born", str(case.birth_year) if case.birth_year else "not recorded"),
        _fact("Community", case.community),
        _fact("Street", case.street or "—"),
    ]
    p = case.profile
    if p is not None:
        per_person = float(p.financial_assets) / case.members if case.members else None
        facts += [
            _fact("Household type", p.type_label),
            _fact("Income per person", f"{_money(p.income_per_capita_month)} a month"),
            _fact("Financial assets", _money(p.financial_assets)
                  + (f" ({_money(per_person)} per person)" if per_person is not None else "")),
            _fact("Living space", f"{p.floor_area_per_person:.1f} m² per person"),
            _fact("Medical spending", _share(p.medical_spending_share)),
            _fact("Education spending", _share(p.education_spending_share)),
            _fact("Unemployed (longest)", f"{p.months_unemployed} months"
                  if p.months_unemployed else "no one"),
        ]
    help_now = "; ".join(f"{a.label} since {a.since:%d %b %Y}" for a in case.assistance)
    facts.append(_fact("Assistance now", help_now or "none"))
    parts: list[Component] = [html.H2(f"{case.head_name} ({case.id})"),
                              html.Dl(facts, className="facts")]
    if p is None:
        parts.append(html.P("No needs profile recorded for this household: import it"
                            " (cityops needs import-households) to score it.", className="muted"))
    return html.Section(parts, className="panel", id="nh-summary")


def _model_text(a: nh.Assessment) -> str:
    if a.model_probability is None:
        return "no model"
    return f"{a.model_probability:.2f}"


def latest_view(case: nh.HouseholdCase, ctx: AppContext, now: datetime) -> html.Section:
    """The newest assessment, prominently: c, band, identification, the model's view."""
    a = case.latest
    if a is None:
        return html.Section([html.H2("Latest assessment"),
                             html.P("Not assessed yet: run cityops needs score.",
                                    className="muted")],
                            className="panel", id="nh-latest")
    verdict = (f"In hardship: identified (c ≥ k = {a.k})" if a.identified
               else f"Not identified (c < k = {a.k})")
    if a.deprived:
        listed = "Deprived in: " + "; ".join(a.deprived) + "."
        if a.censored:
            listed += (" Not identified, so these deprivations are censored: they do not count in"
                       " the district's figures.")
    else:
        listed = "Deprived in nothing."
    model = ("Model (second opinion): no model was trained for this scoring; the index alone."
             if a.model_probability is None else
             f"Model (second opinion): {_model_text(a)} — read it as a ranking, not a chance.")
    return html.Section(
        [
            html.H2("Latest assessment"),
            html.P([html.B(f"c = {a.c} ({a.percent})", className="tile-value"), " ",
                    # the badge's capitals would turn k and c into K and C: the range on hover
                    html.Span(badge(f"intensity {a.band}", f"sev-{_band_kind(a.band)}"),
                              title=a.band_label)],
                   id="nh-score"),
            html.P(verdict, id="nh-identified"),
            html.P(listed, id="nh-deprived"),
            html.P(model, id="nh-model"),
            html.P(f"Second look: {a.second_look}", className="error", id="nh-second-look")
            if a.second_look else None,
            html.P(MODEL_WARNING, className="muted", id="nh-model-warning"),
            html.P(f"Scored {fmt_time(a.at, ctx.tz, now)} with indicator set"
                   f" {a.indicator_set_version}.", className="muted"),
        ],
        className="panel", id="nh-latest",
    )


def _band_kind(band: str) -> str:
    return {"high": "critical", "medium": "high", "low": "low"}[band]


def indicators_view(case: nh.HouseholdCase) -> html.Section:
    """The profile's indicators grouped by dimension; the deprived ones stand out."""
    p = case.profile
    parts: list[Component] = [html.H2("Indicators by dimension")]
    if p is None:
        parts.append(html.P("No profile, so no indicators.", className="muted"))
        return html.Section(parts, className="panel", id="nh-indicators")
    if p.version_note:
        parts.append(html.P(p.version_note, className="error", id="nh-version-note"))
    for dim in p.dimensions:
        items = [
            html.Li([badge("deprived", "sev-high"), " ", html.B(i.label),
                     html.Span(f" · weight {i.weight}", className="muted")],
                    className="deprived")
            if i.deprived else
            html.Li([html.Span(i.label, className="muted"),
                     html.Span(f" · not deprived · weight {i.weight}", className="muted")])
            for i in dim.indicators
        ]
        parts += [html.H3(f"{dim.label}: deprived in {dim.deprived} of {len(dim.indicators)}"),
                  html.Ul(items)]
    parts.append(html.P(f"Weights are exact: each of the {len(p.dimensions)} dimensions weighs"
                        " the same, split equally over its indicators. Identified when the sum"
                        f" of the deprived weights c ≥ k = {case.indicator_set.k}.",
                        className="muted"))
    return html.Section(parts, className="panel", id="nh-indicators")


def _deprivations(a: nh.Assessment) -> str:
    if not a.deprived:
        return "none"
    listed = "; ".join(a.deprived)
    return f"censored (not identified): {listed}" if a.censored else listed


def assessments_view(case: nh.HouseholdCase, ctx: AppContext, now: datetime) -> html.Section:
    """Every assessment, newest first."""
    rows = [[fmt_time(a.at, ctx.tz, now), a.percent, str(a.c),
             "yes" if a.identified else "no", a.band_label, _model_text(a),
             a.second_look or "—", _deprivations(a)] for a in case.assessments]
    return html.Section(
        [html.H2("Assessments"),
         table(["When", "c", "c (exact)", "Identified", "Intensity", "Model", "Second look",
                "Deprivations"], rows, class_name="nh-assessments")],
        className="panel", id="nh-assessments",
    )


def decisions_view(decisions: Sequence[nh.Decision], ctx: AppContext,
                   now: datetime) -> Component:
    """Every decision with its reason, newest first."""
    return table(["When", "By", "Decision", "Programme", "Reason"],
                 [[fmt_time(d.at, ctx.tz, now), d.by, d.decision_label,
                   d.programme_label or "—", d.reason] for d in decisions],
                 class_name="nh-decisions")


def tasks_view(case: nh.HouseholdCase, ctx: AppContext, now: datetime) -> html.Section:
    """The household's review tasks, open ones first (worked on the tasks page)."""
    rows = [[f"{t.title} (version {t.rule_version})", fmt_time(t.fired_at, ctx.tz, now),
             t.fired_by,
             t.status
             + (f" by {t.done_by} {fmt_time(t.done_at, ctx.tz, now)}" if t.done_by else ""),
             t.note or "—"] for t in case.tasks]
    return html.Section(
        [html.H2("Review tasks"),
         table(["Rule", "Fired", "What fired it", "Status", "Note"], rows,
               class_name="nh-tasks")],
        className="panel", id="nh-tasks",
    )


def body_view(case: nh.HouseholdCase, ctx: AppContext, now: datetime) -> list[Component]:
    """The read-only part of the page."""
    return [summary_view(case), latest_view(case, ctx, now), indicators_view(case),
            assessments_view(case, ctx, now), tasks_view(case, ctx, now)]


def decision_form() -> html.Section:
    """Approve, decline, schedule a visit or record a visit that helped, with a reason."""
    return html.Section(
        [
            html.H2("Decide"),
            dcc.RadioItems(id="nh-decision", inline=True,
                           options=[{"label": f" {label}", "value": value}
                                    for value, label in CHOICES.items()]),
            html.Label("Programme (required to approve; may go with a visit that helped)",
                       htmlFor="nh-programme"),
            dcc.Dropdown(id="nh-programme", placeholder="Programme",
                         options=[{"label": label, "value": value}
                                  for value, label in PROGRAMMES.items()]),
            dcc.Textarea(id="nh-reason", className="note-field",
                         placeholder="Reason: why this decision (required)"),
            html.Div(html.Button("Record decision", id="nh-record", className="btn"),
                     className="buttons"),
            html.Div(id="nh-msg", role="status"),
        ],
        className="panel", id="nh-form",
    )


def _read_note(ctx: AppContext, now: datetime) -> str:
    return f"{updated_label(now, ctx.tz, 'Read')}; this view is recorded in the audit log."


def layout(ctx: AppContext, household_id: str) -> Component:
    """The household page (each view audited); a message for an unknown household."""
    user = require_role(*ROLES)
    now = ctx.now()
    case = nh.view_household(ctx.db, household_id, user.username)
    back = dcc.Link("← Back to the needs list", href=HERE, id="nh-back")
    if case is None:
        return html.Div(
            [header("Household", user, HERE),
             html.Main([html.H2("No such household"),
                        html.P(f"There is no household {household_id}; check the id.",
                               id="nh-missing"), back], className="panel")],
            className="page",
        )
    return html.Div(
        [
            header(f"Household {case.id}", user, HERE),
            html.Div([back, html.Span(_read_note(ctx, now), id="nh-read", className="muted"),
                      html.Button("Refresh", id="nh-refresh", className="btn")],
                     className="toolbar"),
            html.Main(body_view(case, ctx, now), id="nh-body"),
            html.Section([html.H2("Decisions"),
                          html.Div(decisions_view(case.decisions, ctx, now),
                                   id="nh-decisions")],
                         className="panel"),
            decision_form(),
            dcc.Store(id="nh-id", data=case.id),
        ],
        className="page",
    )


callbacks = Callbacks()


@callbacks(
    Output("nh-body", "children"),
    Output("nh-decisions", "children"),
    Output("nh-read", "children"),
    Input("nh-refresh", "n_clicks"),
    State("nh-id", "data"),
    prevent_initial_call=True,
)
def refresh(_clicks: int | None, household_id: str) -> tuple[Any, ...]:
    """Read the household again on request (every read is a recorded view)."""
    user = require_role(*ROLES)
    ctx = context()
    now = ctx.now()
    case = nh.view_household(ctx.db, household_id, user.username)
    if case is None:
        return (html.P("This household no longer exists.", className="error"), [],
                _read_note(ctx, now))
    return (body_view(case, ctx, now), decisions_view(case.decisions, ctx, now),
            _read_note(ctx, now))


@callbacks(
    Output("nh-programme", "disabled"),
    Output("nh-programme", "value"),
    Input("nh-decision", "value"),
    prevent_initial_call=True,
)
def programme_field(decision: str | None) -> tuple[bool, Any]:
    """The programme is asked for only with a decision that takes one."""
    require_role(*ROLES)
    allowed = decision in nh.PROGRAMME_ALLOWED
    return not allowed, no_update if allowed else None


@callbacks(
    Output("nh-msg", "children"),
    Output("nh-decisions", "children", allow_duplicate=True),
    Output("nh-reason", "value"),
    Input("nh-record", "n_clicks"),
    State("nh-decision", "value"),
    State("nh-programme", "value"),
    State("nh-reason", "value"),
    State("nh-id", "data"),
    prevent_initial_call=True,
)
def decide(clicks: int | None, decision: str | None, programme: str | None,
           reason: str | None, household_id: str) -> tuple[Any, ...]:
    """Record the decision with its reason; a refusal says what to change and keeps the input."""
    user = require_role(*ROLES)
    if not clicks:
        raise PreventUpdate
    ctx = context()
    try:
        stored = nh.decide(ctx.db, household_id, decision, reason, user.username, programme,
                           now=ctx.now(), tz=ctx.tz)
    except nh.DecisionError as exc:
        return html.P(f"Not recorded: {exc}", className="error"), no_update, no_update
    now = ctx.now()
    case = nh.view_household(ctx.db, household_id, user.username)
    decisions = case.decisions if case else (stored,)
    what = stored.decision_label + (f" ({stored.programme_label})"
                                    if stored.programme_label else "")
    return (html.P(f"Recorded: {what}.", className="ok"), decisions_view(decisions, ctx, now), "")


PAGE = Page(pattern=r"/needs/household/(?P<household_id>[0-9A-Za-z_.-]+)", roles=ROLES,
            layout=layout, callbacks=(callbacks,))

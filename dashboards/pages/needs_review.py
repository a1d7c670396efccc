"""Civil affairs ``/needs``: households ranked by their latest needs assessment, and
``/needs/second-look``: the households where the index and the model disagree strongly.

The index (Alkire-Foster c, exact) is the primary score; the model's probability is a second
opinion learned from past caseworker decisions, shown beside a warning of what it cannot know.
Each row links to the household's page (``/needs/household/<id>``). Every view and refresh is
written to the audit log in the same transaction as the read; the export links carry the filters
to ``dashboards/needs_export.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import dash
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component

from cityops.needs import review as needs_review
from cityops.needs.indicators import BAND_LABELS, load_indicator_set
from cityops.needs.labels import DECISIONS, HOUSEHOLD_TYPES
from cityops.needs.review import (
    LOOK_LABELS,
    FilterError,
    FilterOptions,
    LookKind,
    ReviewFilters,
    ReviewPage,
    ReviewRow,
)
from dashboards.components import fmt_time, header, table
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import WebUser, require_role

ROLES = ("civil_affairs",)
ROWS = 50          # rows per page of the ranked list
LOOK_ROWS = 100    # rows shown of each kind on the second-look page (the export has all)
MODEL_WARNING = (
    "The model learned from past caseworker decisions. Past decisions show who was served, not "
    "who was in need: a household never reached before scores low. The index is the primary "
    "score; the model is a second opinion."
)
NO_ASSESSMENT = ("No household has been assessed yet. Run `cityops needs score` to score every"
                 " household (the index and the model); the scheduler of `cityops run` and"
                 " `cityops demo` also does it when it starts and once a day. The list appears"
                 " here afterwards.")
LOOK_WHY: dict[LookKind, str] = {
    "index_only": (
        "The indicators say this household is in hardship, but households like it were rarely"
        " approved in the past. That may be a household past caseworkers never reached (it never"
        " applied, like many non-local and elderly-alone households): the model cannot know"
        " them, so it scores them low. Look at the index's reasons, not the model."),
    "model_only": (
        "The indicators do not identify this household, but households like it were often"
        " approved. It may have needs the indicators miss (or the model may echo the past rule"
        " of thumb, mostly income). A visit or a call decides."),
}
_WARNING_STYLE = {"borderLeft": "6px solid #ffb020", "background": "#33260a",
                  "color": "#ffe3a3", "padding": "8px 12px", "fontWeight": 600}


def _pairs(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"label": name, "value": code} for code, name in pairs]


def filter_bar(prefix: str, options: FilterOptions, comms: Sequence[tuple[str, str]],
               with_band: bool) -> Component:
    """Street, community (following the street), household type and (optionally) band."""
    fields = [
        dcc.Dropdown(id=f"{prefix}-street", placeholder="Every street",
                     options=_pairs(options.streets)),
        dcc.Dropdown(id=f"{prefix}-community", placeholder="Every community",
                     options=_pairs(comms)),
        dcc.Dropdown(id=f"{prefix}-type", placeholder="Every household type",
                     options=[{"label": HOUSEHOLD_TYPES.get(t, t), "value": t}
                              for t in options.household_types]),
    ]
    if with_band:
        fields.append(dcc.Dropdown(id=f"{prefix}-band", placeholder="Every band",
                                   options=[{"label": label, "value": band}
                                            for band, label in BAND_LABELS.items()]))
    return html.Div(
        [html.Div(f, style={"minWidth": "220px", "flex": "1"}) for f in fields]
        + [html.Button("Refresh", id=f"{prefix}-refresh", className="btn")],
        className="toolbar", style={"flexWrap": "wrap", "justifyContent": "flex-start"},
    )


def export_links(filters: ReviewFilters) -> Component:
    """'CSV' and 'Excel' links that export every household matching ``filters``."""
    query = urlencode(filters.query())
    suffix = f"?{query}" if query else ""
    return html.Span(["Export all matching: ",
                      html.A("CSV", href=f"/needs/export.csv{suffix}", className="nav-link"),
                      " · ",
                      html.A("Excel", href=f"/needs/export.xlsx{suffix}", className="nav-link")],
                     className="exports")


def warning() -> Component:
    """The model warning, shown at the top of both pages."""
    return html.P(["⚠ ", MODEL_WARNING], role="note", className="model-warning",
                  style=_WARNING_STYLE)


def _decision(row: ReviewRow, ctx: AppContext) -> str:
    if row.decision is None:
        return "none"
    label = DECISIONS.get(row.decision, row.decision)
    when = row.decision_at.astimezone(ctx.tz).strftime("%Y-%m-%d") if row.decision_at else ""
    return f"{label} {when}".strip()


def table_view(rows: Sequence[ReviewRow], ctx: AppContext, first_rank: int = 1) -> Component:
    """The households, ranked, each linking to its page."""
    return table(
        ["#", "Household", "Head", "Street / community", "Type", "Score c", "Identified",
         "Band", "Deprivations counted", "Model ⚠ (second opinion)", "Second look",
         "Latest decision"],
        [
            [str(first_rank + i),
             dcc.Link(r.household_id, href=f"/needs/household/{r.household_id}"),
             r.head_name, f"{r.street} / {r.community}",
             HOUSEHOLD_TYPES.get(r.household_type or "", r.household_type or "—"),
             html.Span([html.B(r.c_percent), f" ({r.c})"]),
             "yes" if r.identified else "no", r.band,
             html.Span(r.deprivations_text, style={"fontSize": "14px"}),
             "no model" if r.model_probability is None else f"{r.model_probability:.2f}",
             r.second_look or "—", _decision(r, ctx)]
            for i, r in enumerate(rows)
        ],
        class_name="needs-list",
    )


def _summary(page: ReviewPage, ctx: AppContext, now: datetime) -> str:
    k = load_indicator_set().k
    shown = (f" Showing {page.offset + 1:,}–{page.offset + len(page.rows):,}, ranked by c, then"
             " the model." if page.rows else "")
    return (f"{page.total:,} households match; {page.identified:,} of them identified by the"
            f" index (c ≥ k = {k}).{shown} Read {fmt_time(now, ctx.tz, now, seconds=True)};"
            " this view is recorded in the audit log.")


def _filters(street: str | None, community: str | None, household_type: str | None,
             band: str | None = None, look: LookKind | None = None) -> ReviewFilters:
    return ReviewFilters.from_query({"street": street or "", "community": community or "",
                                     "type": household_type or "", "band": band or "",
                                     "second_look": look or ""})


def _list_content(page: ReviewPage | None, filters: ReviewFilters, ctx: AppContext,
                  now: datetime) -> tuple[Component, str, Component, bool, bool]:
    if page is None:
        return html.P(NO_ASSESSMENT, className="empty"), "", "", True, True
    return (table_view(page.rows, ctx, page.offset + 1), _summary(page, ctx, now),
            export_links(filters), page.offset == 0, page.offset + ROWS >= page.total)


def layout(ctx: AppContext) -> Component:
    """The ranked list (each view audited)."""
    user = require_role(*ROLES)
    now = ctx.now()
    filters = ReviewFilters()
    options, comms = needs_review.read_filter_choices(ctx.db)
    first = needs_review.view_review_list(ctx.db, user.username, filters, limit=ROWS, offset=0)
    body, summary, exports, no_prev, no_next = _list_content(first, filters, ctx, now)
    return html.Div(
        [
            header("Needs: households to review", user, "/needs"),
            html.Main(
                [
                    warning(),
                    filter_bar("needs", options, comms, with_band=True),
                    html.Div([html.P(summary, id="needs-summary"),
                              html.Div(exports, id="needs-exports")], className="toolbar"),
                    html.Div(body, id="needs-table"),
                    html.Div([html.Button("Previous", id="needs-prev", className="btn",
                                          disabled=no_prev),
                              html.Button("Next", id="needs-next", className="btn",
                                          disabled=no_next)], className="buttons"),
                    dcc.Store(id="needs-offset", data=0),
                ],
                className="panel",
            ),
        ],
        className="page",
    )


def _look_section(kind: LookKind, page: ReviewPage, filters: ReviewFilters,
                  ctx: AppContext) -> Component:
    more = (f" The {len(page.rows)} ranked highest are shown; the export has all."
            if len(page.rows) < page.total else "")
    return html.Section(
        [html.H2(f"{LOOK_LABELS[kind].capitalize()}: {page.total:,}", className="title"),
         html.P(LOOK_WHY[kind], className="muted"),
         html.Div([html.Span(more), export_links(replace(filters, look=kind))],
                  className="toolbar"),
         table_view(page.rows, ctx)],
        id=f"look-{kind}", style={"marginTop": "18px"},
    )


def _look_content(pages: dict[LookKind, ReviewPage] | None, filters: ReviewFilters,
                  ctx: AppContext, now: datetime) -> list[Component]:
    if pages is None:
        return [html.P(NO_ASSESSMENT, className="empty")]
    return [html.P(f"Read {fmt_time(now, ctx.tz, now, seconds=True)}; this view is recorded in"
                   " the audit log.", className="muted"),
            *(_look_section(kind, page, filters, ctx) for kind, page in pages.items())]


def second_look_layout(ctx: AppContext) -> Component:
    """The second-look queue, by kind of disagreement (each view audited)."""
    user = require_role(*ROLES)
    now = ctx.now()
    filters = ReviewFilters()
    options, comms = needs_review.read_filter_choices(ctx.db)
    return html.Div(
        [
            header("Needs: second look", user, "/needs/second-look"),
            html.Main(
                [
                    warning(),
                    html.P("Households where the index and the model disagree strongly, as"
                           " flagged by the last `cityops needs score`. Neither score decides"
                           " alone: a person looks at each.", className="muted"),
                    filter_bar("look", options, comms, with_band=False),
                    html.Div(_look_content(read_second_look(ctx, user, filters),
                                           filters, ctx, now), id="look-content"),
                ],
                className="panel",
            ),
        ],
        className="page",
    )


def read_second_look(ctx: AppContext, user: WebUser,
                     filters: ReviewFilters) -> dict[LookKind, ReviewPage] | None:
    """The first LOOK_ROWS of each kind of disagreement, the view audited."""
    return needs_review.view_second_look(ctx.db, user.username, filters, limit=LOOK_ROWS)


def _communities_of(street: str | None, community: str | None) -> tuple[
    list[dict[str, str]], str | None
]:
    require_role(*ROLES)
    comms = needs_review.read_communities(context().db, street)
    kept = community if community in {code for code, _ in comms} else None
    return _pairs(comms), kept


list_callbacks = Callbacks()
look_callbacks = Callbacks()


@list_callbacks(
    Output("needs-community", "options"),
    Output("needs-community", "value"),
    Input("needs-street", "value"),
    State("needs-community", "value"),
    prevent_initial_call=True,
)
def list_follows_street(street: str | None, community: str | None) -> tuple[Any, ...]:
    """The community filter of the list offers the chosen street's communities."""
    return _communities_of(street, community)


@look_callbacks(
    Output("look-community", "options"),
    Output("look-community", "value"),
    Input("look-street", "value"),
    State("look-community", "value"),
    prevent_initial_call=True,
)
def look_follows_street(street: str | None, community: str | None) -> tuple[Any, ...]:
    """The community filter of the second look offers the chosen street's communities."""
    return _communities_of(street, community)


def _offset(trigger: Any, offset: int | None) -> int:
    """The list's first row after a click: next and previous page, refresh keeps it, a
    filter change goes back to the top."""
    offset = offset or 0
    if trigger == "needs-next":
        return offset + ROWS
    if trigger == "needs-prev":
        return max(0, offset - ROWS)
    return offset if trigger == "needs-refresh" else 0


@list_callbacks(
    Output("needs-table", "children"),
    Output("needs-summary", "children"),
    Output("needs-exports", "children"),
    Output("needs-prev", "disabled"),
    Output("needs-next", "disabled"),
    Output("needs-offset", "data"),
    Input("needs-street", "value"),
    Input("needs-community", "value"),
    Input("needs-type", "value"),
    Input("needs-band", "value"),
    Input("needs-refresh", "n_clicks"),
    Input("needs-prev", "n_clicks"),
    Input("needs-next", "n_clicks"),
    State("needs-offset", "data"),
    prevent_initial_call=True,
)
def refresh_list(street: str | None, community: str | None, household_type: str | None,
                 band: str | None, _refresh: int | None, _prev: int | None, _next: int | None,
                 offset: int | None) -> tuple[Any, ...]:
    """Filters, paging and refresh of the ranked list (no timer: every read is a recorded
    view)."""
    user = require_role(*ROLES)
    try:
        filters = _filters(street, community, household_type, band)
    except FilterError as exc:
        return (html.P(f"Not shown: {exc}.", className="error"), "", "", True, True, 0)
    offset = _offset(dash.ctx.triggered_id, offset)
    ctx = context()
    page = needs_review.view_review_list(ctx.db, user.username, filters, limit=ROWS,
                                         offset=offset)
    return (*_list_content(page, filters, ctx, ctx.now()), offset)


@look_callbacks(
    Output("look-content", "children"),
    Input("look-street", "value"),
    Input("look-community", "value"),
    Input("look-type", "value"),
    Input("look-refresh", "n_clicks"),
    prevent_initial_call=True,
)
def refresh_look(street: str | None, community: str | None, household_type: str | None,
                 _refresh: int | None) -> list[Component]:
    """Filters and refresh of the second-look queue."""
    user = require_role(*ROLES)
    try:
        filters = _filters(street, community, household_type)
    except FilterError as exc:
        return [html.P(f"Not shown: {exc}.", className="error")]
    ctx = context()
    return _look_content(read_second_look(ctx, user, filters), filters, ctx, ctx.now())


PAGE = Page(pattern="/needs", roles=ROLES, layout=layout, callbacks=(list_callbacks,))
SECOND_LOOK_PAGE = Page(pattern="/needs/second-look", roles=ROLES, layout=second_look_layout,
                        callbacks=(look_callbacks,))

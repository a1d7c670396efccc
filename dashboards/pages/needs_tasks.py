"""Civil affairs ``/needs/tasks``: the review tasks the "policy finds people" rules opened.

People the rules found who may be eligible but never applied, with what fired each task in plain
words; staff mark a task done or dismiss it, always with a note. The list carries names and
addresses: every view (the page, each filter change or refresh) is written to the audit log in the
same transaction as the read (``cityops.needs.tasks.view_tasks``), and so is every close.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.needs import tasks as needs_tasks
from cityops.needs.rules import BY_ID
from cityops.needs.tasks import ReviewTask, TaskView
from dashboards.components import fmt_time, header, table
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import WebUser, require_role

ROLES = ("civil_affairs",)
ROWS = 200
ALL_RULES = "all"
STATUS_LABELS = {"open": "Open", "done": "Done", "dismissed": "Dismissed"}
INTRO = (
    "These are people the rules found who may be eligible for assistance but never applied. "
    "Each rule is a plain, deterministic condition with a version number; running it twice on the "
    "same facts opens nothing new. A task you close stays closed until the rule's version or the "
    "household's facts change (a lower income, new water-use alerts): then it can come back.")


def read_audited(ctx: AppContext, user: WebUser, rule: str, status: str) -> TaskView:
    """The tasks of the filter and the counts per rule, the view written to the audit log."""
    return needs_tasks.read_tasks(ctx.db, user.username, status=status, limit=ROWS,
                                  rule_id=None if rule == ALL_RULES else rule)


def rule_options(view: TaskView) -> list[dict[str, str]]:
    """The rule filter: every rule with its open tasks."""
    return [{"label": f"All rules ({view.open_total():,} open)", "value": ALL_RULES}] + [
        {"label": f"{c.title} ({c.open:,} open)", "value": c.rule_id} for c in view.counts]


def task_options(view: TaskView) -> list[dict[str, Any]]:
    """The open tasks listed, for the close form."""
    return [{"label": f"#{t.id} {t.head_name} — {t.title}", "value": t.id}
            for t in view.tasks if t.status == "open"]


def _rule_cell(task: ReviewTask) -> Component:
    return html.Span([task.title, html.Span(f" · version {task.rule_version}",
                                            className="muted")], title=task.explanation)


def _closed_cell(task: ReviewTask, ctx: AppContext, now: datetime) -> Component:
    return html.Span([f"{STATUS_LABELS[task.status]} by {task.done_by}, "
                      f"{fmt_time(task.done_at, ctx.tz, now)}: ", html.I(task.note or "")])


def list_view(view: TaskView, ctx: AppContext, now: datetime, rule: str,
              status: str) -> Component:
    """What the rule means (or all rules' meanings), a summary line and the task table."""
    if not view.any_tasks():
        return html.P(["No review tasks yet: the rules have not been run on this district. "
                       "Run ", html.Code("cityops needs find"), " (the scheduler also runs them "
                       "once a day)."], className="muted", id="tasks-summary")
    chosen = BY_ID.get(rule)
    if chosen is not None:
        about: Component = html.P([html.B(f"{chosen.title} (version {chosen.version}). "),
                                   chosen.explanation])
    else:
        about = html.Details([html.Summary("What each rule means")] + [
            html.P([html.B(f"{r.title} (version {r.version}). "), r.explanation])
            for r in BY_ID.values()])
    shown = len(view.tasks)
    more = f" The newest {shown} are shown." if shown < view.total else ""
    summary = (f"{view.total:,} {STATUS_LABELS[status].lower()} task"
               f"{'s' if view.total != 1 else ''}.{more} Read "
               f"{fmt_time(now, ctx.tz, now, seconds=True)}; this view is recorded in the "
               "audit log.")
    columns = ["Household", "Address", "Community", "Rule", "Fired at", "What fired it"]
    if status != "open":
        columns.append("Closed")
    rows = []
    for t in view.tasks:
        row: list[Any] = [
            dcc.Link(t.head_name, href=f"/needs/household/{t.household_id}"), t.address,
            t.community, _rule_cell(t), fmt_time(t.fired_at, ctx.tz, now), t.fired_by]
        if status != "open":
            row.append(_closed_cell(t, ctx, now))
        rows.append(row)
    return html.Div([about, html.P(summary, id="tasks-summary"),
                     table(columns, rows, class_name="tasks")])


def close_form(view: TaskView) -> Component:
    """Mark a listed open task done or dismiss it, with a note a person can read."""
    return html.Section(
        [
            html.H2("Close a task"),
            html.P("Done: you helped the household apply, or checked and acted. Dismiss: the "
                   "household is not eligible or does not need it. Either way, write why.",
                   className="muted"),
            dcc.Dropdown(id="tasks-close-task", placeholder="Task (open tasks listed above)",
                         options=task_options(view)),
            dcc.Textarea(id="tasks-close-note", placeholder="Note (required): what was done, or "
                         "why it is dismissed", style={"width": "100%"}),
            html.Div([html.Button("Done", id="tasks-done", className="btn"),
                      html.Button("Dismiss", id="tasks-dismiss", className="btn")],
                     className="buttons"),
            html.Div(id="tasks-close-msg", role="status"),
        ],
        className="panel", style={"marginTop": "12px"},
    )


def layout(ctx: AppContext) -> Component:
    """The open tasks of all rules (each view audited) and the close form."""
    user = require_role(*ROLES)
    now = ctx.now()
    view = read_audited(ctx, user, ALL_RULES, "open")
    return html.Div(
        [
            header("Review tasks", user, "/needs/tasks"),
            html.Main(
                [
                    html.P(INTRO),
                    html.Div(
                        [dcc.Dropdown(id="tasks-rule", options=rule_options(view),
                                      value=ALL_RULES, clearable=False,
                                      style={"minWidth": "32em"}),
                         dcc.RadioItems(id="tasks-status", value="open", inline=True,
                                        labelStyle={"marginRight": "14px"},
                                        options=[{"label": f" {label}", "value": value}
                                                 for value, label in STATUS_LABELS.items()]),
                         html.Button("Refresh", id="tasks-refresh", className="btn")],
                        className="toolbar"),
                    html.Div(list_view(view, ctx, now, ALL_RULES, "open"), id="tasks-list"),
                ],
                className="panel",
            ),
            close_form(view),
        ],
        className="page",
    )


callbacks = Callbacks()


@callbacks(
    Output("tasks-list", "children"),
    Output("tasks-rule", "options"),
    Output("tasks-close-task", "options"),
    Output("tasks-close-task", "value"),
    Output("tasks-close-note", "value"),
    Output("tasks-close-msg", "children"),
    Input("tasks-rule", "value"),
    Input("tasks-status", "value"),
    Input("tasks-refresh", "n_clicks"),
    Input("tasks-done", "n_clicks"),
    Input("tasks-dismiss", "n_clicks"),
    State("tasks-close-task", "value"),
    State("tasks-close-note", "value"),
    prevent_initial_call=True,
)
def update(rule: str | None, status: str | None, _refresh: int | None, _done: int | None,
           _dismiss: int | None, task_id: int | None, note: str | None) -> tuple[Any, ...]:
    """Filters, refresh and the close form: each re-read of the list is an audited view."""
    user = require_role(*ROLES)
    ctx = context()
    trigger = dash.ctx.triggered_id
    if trigger is None:
        raise PreventUpdate
    rule, status = rule or ALL_RULES, status if status in STATUS_LABELS else "open"
    message: Component | str = ""
    closing = trigger in ("tasks-done", "tasks-dismiss")
    if closing:
        outcome = "done" if trigger == "tasks-done" else "dismissed"
        try:
            message = close(ctx, user, task_id, outcome, note or "")
        except needs_tasks.TaskError as exc:
            return (dash.no_update,) * 5 + (html.P(str(exc), className="error"),)
    now = ctx.now()
    view = read_audited(ctx, user, rule, status)
    return (list_view(view, ctx, now, rule, status), rule_options(view), task_options(view),
            None, "" if closing else dash.no_update, message)


def close(ctx: AppContext, user: WebUser, task_id: int | None, status: str, note: str) -> (
        Component):
    """Close a task as ``user``; the sentence to show. Raises ``TaskError`` with a sentence a
    person can act on."""
    if task_id is None:
        raise needs_tasks.TaskError("Choose a task from the list first.")
    now = ctx.now()
    try:
        task = needs_tasks.close(ctx.db, int(task_id), status, note, user.username, now)
    except needs_tasks.TaskClosedError as exc:
        raise needs_tasks.TaskError(
            f"Not changed: task #{exc.task_id} was already marked {exc.status} by {exc.done_by} "
            f"({fmt_time(exc.done_at, ctx.tz, now)}).") from exc
    except needs_tasks.TaskError as exc:
        raise needs_tasks.TaskError(f"Not changed: {exc}.") from exc
    return html.P(f"Task #{task.id} ({task.head_name}, {task.title}) marked {task.status}.",
                  className="ok")


PAGE = Page(pattern="/needs/tasks", roles=ROLES, layout=layout, callbacks=(callbacks,))

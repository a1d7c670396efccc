"""12345 hotline ``/hotline``: the operator's form during a call, their recent calls, and the
callbacks (closed cases to rate with the caller, bad reviews and their follow-up).

The form files the case through :func:`cityops.cases.intake.file_case` (source ``hotline``, the call
type, the operator as actor): the answer shows the case number and its deadline, or the case it
was linked to as a duplicate; a consultation answered on the call is closed at once with the
answer as its note. Every invalid field gets its own message beside it and nothing typed is lost.

Callers' names and phones are personal: this page is for hotline operators only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dash import Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component

from cityops.cases import hotline, ratings
from cityops.cases.categories import Catalogue
from cityops.cases.hotline import CALL_TYPE_NAMES
from cityops.cases.intake import IntakeError
from cityops.cases.ratings import RatingError
from cityops.cases.tickets import CALL_TYPES, Actor, NewCase, TransitionError
from cityops.org.grids import GridIndex
from dashboards.components import badge, fmt_time, header, table, updated_label
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import require_role

ROLES = ("hotline",)
REFRESH_MS = 60_000
# form fields that can be wrong, each with a message element ``hl-<field>-err``
FIELDS = ("name", "phone", "call-type", "category", "description", "address", "location",
          "answer")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]*[0-9]$")
SCORES = {1: "1 very dissatisfied", 2: "2 dissatisfied", 3: "3 fair", 4: "4 satisfied",
          5: "5 very satisfied"}
STATUS_TEXT = {"registered": "registered (waiting for a worker)", "dispatched": "dispatched",
               "reported": "reported", "voided": "linked as a duplicate", "closed": "closed"}


def catalogue(ctx: AppContext) -> Catalogue:
    """The case categories of the settings (loaded once)."""
    return ctx.desk.clock.catalogue


def _days(days: float) -> str:
    return f"{days:g} working day{'' if days == 1 else 's'}"


def call_type_options(ctx: AppContext) -> list[dict[str, str]]:
    """Call types, each with its handling limit from the settings."""
    limits = ctx.settings.cases.call_type_days
    return [{"label": f" {CALL_TYPE_NAMES[t]} — {_days(limits[t])}", "value": t}
            for t in CALL_TYPES]


def category_options(cat: Catalogue) -> list[dict[str, Any]]:
    """Categories grouped by major category: a greyed heading, then its minor categories."""
    options: list[dict[str, Any]] = []
    major = None
    for code, c in sorted(cat.categories.items()):
        if code[:3] != major:
            major = code[:3]
            kind = "component" if c.type == "C" else "event"
            options.append({"label": f"{major} {c.major_name} ({kind})", "value": f"major-{major}",
                            "disabled": True})
        options.append({"label": f"    {code} {c.name}", "value": code,
                        "search": f"{code} {c.name} {c.major_name}"})
    return options


def cell_options(index: GridIndex) -> list[dict[str, str]]:
    """The finest cells (communities), with their street, by name."""
    options = []
    for cell in index.cells.values():
        if cell.level != "community":
            continue
        street = next((index.cells[a].name for a in index.ancestors(cell.code)
                       if index.cells[a].level == "street"), "")
        options.append({"label": f"{cell.name} — {street}" if street else cell.name,
                        "value": cell.code})
    return sorted(options, key=lambda o: o["label"])


def _field(label: str, control: Component, field: str, hint: str = "") -> html.Div:
    parts: list[Component] = [html.Label(label, htmlFor=getattr(control, "id", None)), control]
    if hint:
        parts.append(html.Div(hint, className="hint"))
    parts.append(html.Div(id=f"hl-{field}-err", className="field-error", role="alert"))
    return html.Div(parts, className="form-field", id=f"hl-{field}-field")


def _location_field(ctx: AppContext) -> html.Div:
    """A point, or the community when the caller does not know it."""
    return _field(
        "Location",
        html.Div([
            dcc.Input(id="hl-lat", type="text", placeholder="latitude, e.g. 31.2304",
                      inputMode="decimal", autoComplete="off"),
            dcc.Input(id="hl-lon", type="text", placeholder="longitude, e.g. 121.4737",
                      inputMode="decimal", autoComplete="off"),
            html.Span("or", className="muted"),
            dcc.Dropdown(id="hl-cell", options=cell_options(ctx.desk.index()),
                         placeholder="community", searchable=True, clearable=True,
                         className="cell-pick"),
        ], className="form-row"),
        "location",
        "a point if the caller knows it; else the community (a consultation needs none)",
    )


def _answer_box() -> html.Div:
    """For a consultation: answered on the call, and the answer given."""
    return html.Div(
        [
            dcc.Checklist(id="hl-answered", value=[], options=[
                {"label": " Answered on the call (close the consultation now)",
                 "value": "answered"}]),
            _field("Answer given", dcc.Textarea(id="hl-answer", className="note-field",
                                                maxLength=2000), "answer"),
        ],
        id="hl-answer-box", style={"display": "none"},
    )


def form_view(ctx: AppContext) -> html.Section:
    """The intake form of one call."""
    return html.Section(
        [
            html.H2("New call"),
            html.Div(
                [
                    _field("Caller's name", dcc.Input(id="hl-name", type="text", maxLength=60,
                                                      autoComplete="off"), "name",
                           "as the caller gives it, or “anonymous”"),
                    _field("Caller's phone", dcc.Input(id="hl-phone", type="tel", maxLength=24,
                                                       autoComplete="off"), "phone",
                           "for the callback and the rating"),
                ],
                className="form-row",
            ),
            _field("Call type", dcc.RadioItems(id="hl-call-type",
                                               options=call_type_options(ctx), inline=False,
                                               className="radio-list"), "call-type",
                   "the limit is the handling time from dispatch"),
            _field("Category", dcc.Dropdown(id="hl-category",
                                            options=category_options(catalogue(ctx)),
                                            placeholder="Type a code or a word, e.g. manhole",
                                            searchable=True, clearable=True), "category"),
            _field("What the caller says", dcc.Textarea(id="hl-description",
                                                        className="note-field", maxLength=2000),
                   "description"),
            _field("Address", dcc.Input(id="hl-address", type="text", maxLength=200,
                                        autoComplete="off"), "address",
                   "street and number, or a landmark (not needed for a consultation)"),
            _location_field(ctx),
            dcc.Checklist(id="hl-urgent", options=[{"label": " Urgent (danger to people or"
                                                              " property)", "value": "urgent"}],
                          value=[]),
            _answer_box(),
            html.Div([html.Button("File the case", id="hl-submit", className="btn"),
                      html.Button("New call (clear)", id="hl-new", className="btn btn-dispatched")],
                     className="buttons"),
            html.Div(id="hl-result", role="status"),
        ],
        className="panel hotline-form",
    )


@dataclass(frozen=True)
class Form:
    """What the operator typed."""

    name: str | None = None
    phone: str | None = None
    call_type: str | None = None
    category: str | None = None
    description: str | None = None
    address: str | None = None
    lat: str | None = None
    lon: str | None = None
    cell: str | None = None
    urgent: bool = False
    answered: bool = False
    answer: str | None = None


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_form(form: Form, cat: Catalogue, operator: str, district: str | None = None) -> tuple[
    NewCase | None, str | None, dict[str, str]
]:
    """The case to file and the closing note (a consultation answered on the call), or the
    message of every invalid field (by field of :data:`FIELDS`). A consultation with no place
    is filed on the whole district (cell ``district``)."""
    errors: dict[str, str] = {}
    name = (form.name or "").strip()
    phone = (form.phone or "").strip()
    description = (form.description or "").strip()
    address = (form.address or "").strip()
    if not name:
        errors["name"] = "Enter the caller's name, or “anonymous”."
    digits = re.sub(r"\D", "", phone)
    if not phone:
        errors["phone"] = "Enter the caller's phone number for the callback."
    elif not _PHONE.match(phone) or not 7 <= len(digits) <= 15:
        errors["phone"] = "A phone number has 7 to 15 digits (spaces, dashes and a leading +" \
                          " are fine)."
    call_type = form.call_type
    if call_type not in CALL_TYPES:
        errors["call-type"] = "Choose the call type."
        call_type = None
    if not form.category:
        errors["category"] = "Choose the category."
    elif form.category not in cat.categories:
        errors["category"] = f"There is no category {form.category}."
    if len(description) < 5:
        errors["description"] = "Write down what the caller says (at least a few words)."
    consultation = call_type == "consultation"
    lat_text = (form.lat or "").strip()
    lat, lon = _location(form, consultation, errors)
    if not consultation and not address:
        errors["address"] = "Enter the address or a landmark."
    answered = consultation and form.answered
    if answered and len((form.answer or "").strip()) < 3:
        errors["answer"] = "Write down the answer given on the call."
    if errors:
        return None, None, errors
    assert call_type is not None and form.category is not None
    category = cat.categories[form.category]
    case = NewCase(
        source="hotline", category=form.category,
        title=f"{CALL_TYPE_NAMES[call_type]}: {category.name}",
        description=description, priority="urgent" if form.urgent else "normal",
        lon=lon if lat_text else None, lat=lat if lat_text else None,
        grid_code=(form.cell or (district if not address else None)) if not lat_text else None,
        address=address or None, reported_by=operator, reporter_name=name,
        reporter_phone=phone, call_type=call_type,
    )
    return case, (form.answer or "").strip() if answered else None, {}


def _location(form: Form, consultation: bool,
              errors: dict[str, str]) -> tuple[float | None, float | None]:
    """The call's point (latitude, longitude) if given; a message in ``errors`` when it is
    wrong, or missing without a community for anything but a consultation."""
    lat_text, lon_text = (form.lat or "").strip(), (form.lon or "").strip()
    lat = lon = None
    if lat_text or lon_text:
        lat, lon = _number(lat_text), _number(lon_text)
        if not lat_text or not lon_text:
            errors["location"] = "Give both latitude and longitude, or neither."
        elif lat is None or lon is None:
            errors["location"] = "Latitude and longitude are decimal numbers, e.g. 31.2304."
        elif not (-90 <= lat <= 90 and -180 <= lon <= 180):
            errors["location"] = "Latitude is between -90 and 90, longitude between -180 and" \
                                 " 180: are they swapped?"
    elif not consultation and not form.cell:
        errors["location"] = "Pick the community, or give latitude and longitude."
    return lat, lon


# intake's NewCase fields -> the form field that shows the problem
_INTAKE_FIELDS = {"category": "category", "title": "description", "description": "description",
                  "lon": "location", "lat": "location", "grid_code": "location",
                  "address": "address", "call_type": "call-type", "reporter_phone": "phone",
                  "reporter_name": "name"}


def _when(value: datetime | None, ctx: AppContext, now: datetime) -> str:
    if value is None:
        return "—"
    local = value.astimezone(ctx.tz)
    return f"{local:%a %d %b %H:%M}" if local.date() != now.astimezone(ctx.tz).date() \
        else f"today {local:%H:%M}"


def outcome_view(outcome: Mapping[str, Any], ctx: AppContext, now: datetime,
                 reason: str | None = None) -> Component:
    """What became of the filed call."""
    tid = outcome["id"]
    if outcome["duplicate_of"] is not None:
        return html.Div([
            html.P([html.B(f"Linked to case #{outcome['duplicate_of']}"),
                    f": the same thing was already reported nearby. This call is recorded as"
                    f" case #{tid} and will not be dispatched twice."]),
        ], className="ok", id="hl-outcome")
    if outcome["status"] == "closed":
        return html.P([html.B(f"Case #{tid}"), ": consultation answered on the call and closed."
                       " It will appear under callbacks for the caller's rating."],
                      className="ok", id="hl-outcome")
    days = ctx.settings.cases.call_type_days[outcome["call_type"]]
    status = STATUS_TEXT.get(outcome["status"], outcome["status"])
    worker = f" to {outcome['worker']}" if outcome["worker"] else ""
    lines = [html.P([html.B(f"Case #{tid}"), f" filed: {status}{worker}."])]
    if outcome["due_at"] is not None:
        lines.append(html.P([html.B("Deadline: "), _when(outcome["due_at"], ctx, now),
                             f" (the {CALL_TYPE_NAMES[outcome['call_type']].lower()} limit is"
                             f" {_days(days)})"]))
    else:
        lines.append(html.P([html.B("Dispatch by: "), _when(outcome["dispatch_due_at"], ctx, now),
                             f"; then {_days(days)} to handle it."]))
        if reason:
            lines.append(html.P(reason, className="muted"))
    return html.Div(lines, className="ok", id="hl-outcome")


def recent_view(rows: Sequence[Mapping[str, Any]], ctx: AppContext, now: datetime) -> Component:
    """The operator's recent calls with their status."""
    def status(r: Mapping[str, Any]) -> Component:
        if r["duplicate_of"] is not None:
            return html.Span(f"linked to #{r['duplicate_of']}")
        return badge(r["status"].replace("_", " "), f"st-{r['status']}")
    return table(
        ["Case", "Time", "Caller", "Call type", "Category", "Status", "Deadline"],
        [[f"#{r['id']}", fmt_time(r["created_at"], ctx.tz, now), r["reporter_name"] or "—",
          CALL_TYPE_NAMES.get(r["call_type"] or "", "—"), r["category"], status(r),
          fmt_time(r["due_at"] or r["dispatch_due_at"], ctx.tz, now)] for r in rows],
        class_name="hl-recent",
    )


def awaiting_view(rows: Sequence[Mapping[str, Any]], ctx: AppContext, now: datetime) -> (
    Component
):
    """Closed hotline cases waiting for the caller's rating."""
    return table(
        ["Case", "Closed", "Caller", "Phone", "Call type", "What"],
        [[f"#{r['id']}", fmt_time(r["closed_at"], ctx.tz, now), r["reporter_name"] or "—",
          r["reporter_phone"] or "—", CALL_TYPE_NAMES.get(r["call_type"] or "", "—"),
          r["title"]] for r in rows],
        class_name="hl-awaiting",
    )


def bad_view(rows: Sequence[Mapping[str, Any]], ctx: AppContext, now: datetime) -> Component:
    """Bad reviews: follow-up due time and state (then rate again)."""
    def state(r: Mapping[str, Any]) -> Component:
        text = hotline.follow_up_state(dict(r), now)
        if r["followed_up_at"] is not None:
            return html.Span([badge("followed up", "st-resolved"), " ",
                              r["follow_up_note"] or "", " — call back to rate again"])
        return badge(text, "overdue-badge" if "overdue" in text else "prio-normal")
    return table(
        ["Case", "Score", "Comment", "Caller", "Phone", "Follow up by", "State"],
        [[f"#{r['ticket_id']}", f"{r['score']}/5", r["comment"] or "—",
          r["reporter_name"] or "—", r["reporter_phone"] or "—",
          fmt_time(r["follow_up_due_at"], ctx.tz, now), state(r)] for r in rows],
        class_name="hl-bad",
    )


def _rate_options(awaiting: Sequence[Mapping[str, Any]],
                  bad: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    options = [{"label": f"#{r['id']} {r['reporter_name'] or ''} — {r['title']}",
                "value": r["id"]} for r in awaiting]
    options += [{"label": f"#{r['ticket_id']} {r['reporter_name'] or ''} — rate again"
                          f" (was {r['score']}/5)", "value": r["ticket_id"]} for r in bad]
    return options


def _lists(ctx: AppContext, username: str) -> tuple[Any, ...]:
    now = ctx.now()
    recent, awaiting, bad = hotline.read_lists(ctx.db, username)
    return (recent_view(recent, ctx, now), awaiting_view(awaiting, ctx, now),
            bad_view(bad, ctx, now), _rate_options(awaiting, bad), updated_label(now, ctx.tz))


def rating_form(options: list[dict[str, Any]]) -> html.Div:
    """Record the caller's score and comment for a case."""
    return html.Div(
        [
            html.H3("Record a rating"),
            html.Div([
                html.Div([dcc.Dropdown(id="hl-rate-case", placeholder="Case",
                                       options=options, searchable=True),
                          html.Div(id="hl-rate-case-err", className="field-error",
                                   role="alert")], className="form-field"),
                html.Div([dcc.RadioItems(id="hl-rate-score", inline=True,
                                         options=[{"label": f" {v}", "value": k}
                                                  for k, v in SCORES.items()]),
                          html.Div(id="hl-rate-score-err", className="field-error",
                                   role="alert")], className="form-field"),
            ], className="form-row"),
            dcc.Textarea(id="hl-rate-comment", className="note-field", maxLength=1000,
                         placeholder="What the caller said (1 or 2: what they are unhappy"
                                     " with)"),
            html.Div(html.Button("Record rating", id="hl-rate-submit", className="btn"),
                     className="buttons"),
            html.Div(id="hl-rate-msg", role="status"),
        ],
    )


def layout(ctx: AppContext) -> Component:
    """The form, the operator's recent calls and the callbacks."""
    user = require_role(*ROLES)
    recent, awaiting, bad, options, updated = _lists(ctx, user.username)
    follow_up = _days(ctx.settings.cases.bad_review_follow_up_days)
    calls = html.Section(
        [
            html.Div([html.H2("My recent calls"),
                      html.Button("Refresh", id="hl-refresh", className="btn")],
                     className="toolbar"),
            html.Div(recent, id="hl-recent"),
        ],
        className="panel",
    )
    callbacks_panel = html.Section(
        [
            html.H2("Callbacks"),
            html.H3("Closed cases waiting for the caller's rating"),
            html.Div(awaiting, id="hl-awaiting"),
            html.H3(f"Bad reviews: follow up within {follow_up}, then rate again"),
            html.Div(bad, id="hl-bad"),
            rating_form(options),
        ],
        className="panel",
    )
    return html.Div(
        [
            header("12345 hotline", user, "/hotline", updated=updated),
            html.Main([form_view(ctx),
                       html.Div([calls, callbacks_panel], className="hotline-side")],
                      className="hotline-page"),
            dcc.Store(id="hl-done", data=0),
            dcc.Interval(id="hl-tick", interval=REFRESH_MS),
        ],
        className="page",
    )


def file_call(ctx: AppContext, operator: str, form: Form) -> tuple[dict[str, str], Component]:
    """Check and file one call; (errors by field, result to show)."""
    index = ctx.desk.index()
    district = next((c.code for c in index.cells.values() if c.level == "district"), None)
    case, closing, errors = check_form(form, catalogue(ctx), operator, district)
    if case is None:
        return errors, html.P(f"Not filed: {len(errors)} field{'s' if len(errors) > 1 else ''}"
                              " to correct (marked above).", className="error")
    now = ctx.now()
    try:
        intake = ctx.desk.file(case, Actor(operator, "hotline"), closing_note=closing, now=now)
    except IntakeError as exc:
        errors, general = {}, []
        for name, reason in exc.problems:
            field = _INTAKE_FIELDS.get(name)
            if field is None:
                general.append(reason)
            else:
                errors[field] = (errors[field] + " " if field in errors else "") + reason + "."
        text = "Not filed: " + ("; ".join(general) if general else "correct the fields marked"
                                " above") + "."
        return errors, html.P(text, className="error")
    except TransitionError as exc:
        return {}, html.P(f"Not filed: {exc}.", className="error")
    reason = intake.assignment.reason if intake.assignment else None
    return {}, outcome_view(hotline.read_outcome(ctx.db, intake.ticket_id), ctx, now, reason)


callbacks = Callbacks()


@callbacks(
    *[Output(f"hl-{f}-err", "children") for f in FIELDS],
    Output("hl-result", "children"),
    Output("hl-done", "data"),
    Input("hl-submit", "n_clicks"),
    State("hl-name", "value"), State("hl-phone", "value"), State("hl-call-type", "value"),
    State("hl-category", "value"), State("hl-description", "value"),
    State("hl-address", "value"), State("hl-lat", "value"), State("hl-lon", "value"),
    State("hl-cell", "value"), State("hl-urgent", "value"), State("hl-answered", "value"),
    State("hl-answer", "value"), State("hl-done", "data"),
    prevent_initial_call=True,
)
def submit(_clicks: int | None, name: str | None, phone: str | None, call_type: str | None,
           category: str | None, description: str | None, address: str | None,
           lat: str | None, lon: str | None, cell: str | None, urgent: list[str] | None,
           answered: list[str] | None, answer: str | None, done: int | None) -> tuple[
               Any, ...]:
    """Check and file the call; each invalid field gets its message."""
    user = require_role(*ROLES)
    form = Form(name, phone, call_type, category, description, address,
                None if lat is None else str(lat), None if lon is None else str(lon), cell,
                "urgent" in (urgent or []), "answered" in (answered or []), answer)
    errors, result = file_call(context(), user.username, form)
    return (*[errors.get(f, "") for f in FIELDS], result,
            no_update if errors else (done or 0) + 1)

@callbacks(
    Output("hl-answer-box", "style"),
    Input("hl-call-type", "value"),
)
def answer_box(call_type: str | None) -> dict[str, str]:
    """The answer field shows for a consultation only."""
    require_role(*ROLES)
    return {} if call_type == "consultation" else {"display": "none"}

@callbacks(
    Output("hl-name", "value"), Output("hl-phone", "value"),
    Output("hl-call-type", "value"), Output("hl-category", "value"),
    Output("hl-description", "value"), Output("hl-address", "value"),
    Output("hl-lat", "value"), Output("hl-lon", "value"), Output("hl-cell", "value"),
    Output("hl-urgent", "value"), Output("hl-answered", "value"),
    Output("hl-answer", "value"),
    Output("hl-result", "children", allow_duplicate=True),
    *[Output(f"hl-{f}-err", "children", allow_duplicate=True) for f in FIELDS],
    Input("hl-new", "n_clicks"),
    prevent_initial_call=True,
)
def new_call(_clicks: int | None) -> tuple[Any, ...]:
    """Clear the form for the next call."""
    require_role(*ROLES)
    return ("", "", None, None, "", "", "", "", None, [], [], "", "",
            *[""] * len(FIELDS))

@callbacks(
    Output("hl-rate-case-err", "children"),
    Output("hl-rate-score-err", "children"),
    Output("hl-rate-msg", "children"),
    Output("hl-done", "data", allow_duplicate=True),
    Input("hl-rate-submit", "n_clicks"),
    State("hl-rate-case", "value"),
    State("hl-rate-score", "value"),
    State("hl-rate-comment", "value"),
    State("hl-done", "data"),
    prevent_initial_call=True,
)
def rate(_clicks: int | None, ticket_id: int | None, score: int | None,
         comment: str | None, done: int | None) -> tuple[Any, ...]:
    """Record the caller's rating of a case."""
    user = require_role(*ROLES)
    case_err = "" if ticket_id else "Choose the case the caller rates."
    score_err = "" if score in SCORES else "Choose the caller's score, 1 to 5."
    if case_err or score_err:
        return case_err, score_err, "", no_update
    assert ticket_id is not None and score is not None
    ctx = context()
    try:
        rating = ratings.rate(
            ctx.db, int(ticket_id), int(score), channel="hotline",
            recorded_by=Actor(user.username, "hotline"), comment=comment or "",
            calendar=ctx.desk.clock.calendar,
            follow_up_days=ctx.settings.cases.bad_review_follow_up_days,
        )
    except RatingError as exc:
        return "", "", html.P(f"Not recorded: {exc}.", className="error"), no_update
    text = f"Rating {rating.score}/5 recorded for case #{rating.ticket_id}."
    if rating.follow_up_due_at is not None:
        text += (" A bad review: it must be followed up by"
                 f" {_when(rating.follow_up_due_at, ctx, ctx.now())}.")
    return "", "", html.P(text, className="ok"), (done or 0) + 1

@callbacks(
    Output("hl-recent", "children"),
    Output("hl-awaiting", "children"),
    Output("hl-bad", "children"),
    Output("hl-rate-case", "options"),
    Output("updated", "children", allow_duplicate=True),
    Input("hl-done", "data"),
    Input("hl-tick", "n_intervals"),
    Input("hl-refresh", "n_clicks"),
    prevent_initial_call=True,
)
def refresh(_done: int | None, _tick: int | None, _clicks: int | None) -> tuple[Any, ...]:
    """The lists, after a filing or a rating, every minute and on request."""
    user = require_role(*ROLES)
    return _lists(context(), user.username)


PAGE = Page(pattern="/hotline", roles=ROLES, layout=layout, callbacks=(callbacks,))

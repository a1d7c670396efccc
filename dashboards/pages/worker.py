"""The grid worker's phone page ``/worker`` (made for a 390 x 844 phone in one hand, outdoors).

Three views behind big tabs, and one case at a time:

- **My tasks**: the worker's cases, most urgent first (overdue, then priority, then the nearest
  limit), each with the time left to its current limit (sign for while dispatched, handle after);
  a tap opens the case: a small map of the place, the address or cell, the sensor's explanation
  (and, for a water meter, today's use beside the usual range), and big buttons for the moves the
  case allows: Sign for, Arrived, Handled (note required, photos), Return (reason required), Ask
  for more time.
- **My cell**: the open cases of the worker's own cell that are someone else's (read-only).
- **Report a problem** (patrol): category, place (tap the map or use the phone's position),
  photo, note, "fixed on the spot"; filed through :func:`cityops.cases.intake.file_case`.

What a worker may see and do is decided by :mod:`cityops.cases.worker` (their own and their
cell's cases only); every callback checks the role and passes the worker's id down.

Light on a slow connection: no library beyond Dash's own bundles; the maps and the water chart are
SVG pictures drawn on the server (a few kB, nothing fetched from outside, no plotly.js); the lists
refresh every 30 s and only send the times left when nothing else changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import dash
from dash import ALL, MATCH, Input, Output, State, dcc, html, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.cases import worker as worker_cases
from cityops.cases.photos import Photo
from cityops.cases.tickets import Actor, NewCase, TransitionError
from cityops.sensing import away
from cityops.views import phone
from dashboards import photos, svgmap
from dashboards.components import (
    PRIORITY_COLOURS,
    STATUS_LABELS,
    badge,
    fmt_left,
    fmt_time,
    header,
    updated_label,
)
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import WebUser, require_role

ROLES = ("grid_worker",)
REFRESH_MS = 30_000
MAP_SIZE = (360, 220)
MOVE_NAMES = {"signed_for": "Sign for", "in_progress": "Arrived", "handled": "Handled",
              "returned": "Return"}
DONE_NAMES = {"signed_for": "signed for", "in_progress": "on site: in progress",
              "handled": "handled: it waits for verification", "returned": "returned to dispatch"}
LIMIT_NAMES = {"dispatch": "Dispatch", "sign": "Sign for", "handle": "Handle"}
NO_TASKS = "No tasks for you now. New ones appear here by themselves."
NO_CELL_CASES = "No other open cases in your cell."
SOURCE_NAMES = {"sensor": "sensor", "patrol": "patrol", "citizen": "citizen", "hotline": "12345",
                "scheduled": "inspection"}


def _actor(user: WebUser) -> Actor:
    return Actor(user.username, "grid_worker", user.worker_id)


def _worker(user: WebUser) -> str:
    return user.worker_id or ""


# ---------- pieces ----------

def left_text(t: Mapping[str, Any], now: datetime) -> html.Span:
    """'Sign for: 35 min left' / 'Handle: overdue 25 min' (red)."""
    if t["deadline"] is None:
        return html.Span("No time limit", className="muted")
    return html.Span(f"{LIMIT_NAMES[t['deadline_kind']]}: {fmt_left(t['deadline'], now)}",
                     className="left overdue" if t["overdue"] else "left")


def place_text(t: Mapping[str, Any]) -> str:
    """Where: the cell, and the address (or, for a welfare case, only the device's label)."""
    parts = [t["cell"] or "no cell"]
    if t["welfare"]:
        if t["device_label"] or t["device_id"]:
            parts.append(t["device_label"] or t["device_id"])
    elif t["address"]:
        parts.append(t["address"])
    elif t["device_label"]:
        parts.append(t["device_label"])
    return " · ".join(parts)


def case_row(t: Mapping[str, Any], now: datetime, *, cell: bool = False) -> html.Button:
    """One case in a list: a big tappable row."""
    top = [badge(t["priority"], f"prio-{t['priority']}"),
           badge(STATUS_LABELS.get(t["status"], t["status"]), f"st-{t['status']}"),
           html.Span(f"#{t['id']}", className="muted")]
    if cell and t["worker"]:
        top.append(html.Span(t["worker"], className="muted who-has"))
    return html.Button(
        [html.Span(top, className="badges"),
         html.Span(t["title"], className="row-title"),
         html.Span(left_text(t, now), id={"type": "wk-left", "ticket": t["id"]},
                   className="row-left"),
         html.Span(place_text(t), className="row-place")],
        id={"type": "wk-open", "ticket": t["id"]},
        className=f"case-row card-{t['priority']}" + (" is-overdue" if t["overdue"] else ""),
    )


def rows_view(cases: Sequence[Mapping[str, Any]], now: datetime, empty: str, *,
              cell: bool = False) -> list[Component]:
    if not cases:
        return [html.P(empty, className="empty")]
    return [case_row(t, now, cell=cell) for t in cases]


def _map_picture(t: Mapping[str, Any]) -> Component | None:
    cells = t["cells"]
    if not cells:
        return None
    point = (t["lon"], t["lat"]) if t["lon"] is not None and t["lat"] is not None else None
    code = (t["grid_code"] or "").strip()
    try:
        src, _ = svgmap.place_map(cells, own=code, focus=[code], point=point,
                                  point_colour=PRIORITY_COLOURS[t["priority"]],
                                  width=MAP_SIZE[0], height=MAP_SIZE[1])
    except ValueError:
        return None
    return html.Img(src=src, className="place-map", alt=f"Map of {t['cell'] or 'the place'}")


def _water_picture(t: Mapping[str, Any]) -> list[Component]:
    chart = t["water_chart"]
    if chart is None:
        return []
    key = ("yellow bars: litres per hour today"
           + (f"; blue band: the usual range ({chart['history_days']} days)"
              if chart["band_high_l"] is not None else "; no usual range stored yet"))
    return [html.H3("Water use today"),
            html.Img(src=svgmap.water_day(chart), className="water-chart", id="wk-water-chart",
                     alt="Water use today by hour"),
            html.P(key, className="muted small")]


def task_body(ctx: AppContext, t: Mapping[str, Any], now: datetime) -> list[Component]:
    """The facts of one case: what, where, why, since when."""
    body: list[Component] = [
        html.Div([badge(t["priority"], f"prio-{t['priority']}"),
                  badge(STATUS_LABELS.get(t["status"], t["status"]), f"st-{t['status']}"),
                  html.Span(f"#{t['id']} · {SOURCE_NAMES.get(t['source'], t['source'])}",
                            className="muted")], className="badges"),
        html.H2(t["title"], id="wk-task-title"),
    ]
    if t["deadline"] is not None:
        body.append(html.P(f"{LIMIT_NAMES[t['deadline_kind']]} by "
                           f"{fmt_time(t['deadline'], ctx.tz, now)}", className="muted"))
    picture = _map_picture(t)
    if picture is not None:
        body.append(picture)
    where: list[Any] = [html.B("Where: "), place_text(t)]
    if t["lon"] is not None and t["lat"] is not None and not t["welfare"]:
        where += [html.Br(), html.A("Open in the phone's map app",
                                    href=f"geo:{t['lat']:.6f},{t['lon']:.6f}")]
    body.append(html.P(where, className="where"))
    if t["alert_message"]:
        body += [html.H3("What the sensor says"), html.P(t["alert_message"], id="wk-explain",
                                                         className="explain")]
    elif t["description"]:
        body += [html.H3("What was reported"), html.P(t["description"], id="wk-explain",
                                                      className="explain")]
    body += _water_picture(t)
    if t.get("photos"):
        body.append(html.P([html.B("Photos: ")] + [
            html.A(f"photo {i}", href=f"/photos/{pid}", target="_blank", className="photo-link")
            for i, pid in enumerate(t["photos"], 1)]))
    if t["postponement_asked"] is not None:
        body.append(html.P(f"More time asked until {fmt_time(t['postponement_asked'], ctx.tz, now)}"
                           ": waiting for the centre.", className="muted"))
    if not t["mine"]:
        body.append(html.P(f"Read-only: this case is {t['worker'] or 'not assigned yet'}'s.",
                           className="readonly"))
    return body


def task_actions(ctx: AppContext, t: Mapping[str, Any], now: datetime) -> list[Component]:
    """Note, photo and the big buttons for the moves the case allows (own cases only)."""
    moves = worker_cases.phone_moves(dict(t))
    if not moves:
        return []
    controls: list[Component] = [
        dcc.Textarea(id={"type": "wk-note", "for": "case"}, className="note-field",
                     placeholder="Note: what you found or did (required for Handled;"
                                 " the reason for Return)"),
    ]
    if "handled" in moves:
        controls += [
            *upload("handled", "Add a photo (JPEG, PNG or WebP, up to 5 MB)"),
        ]
    controls.append(html.Div(
        [html.Button(MOVE_NAMES[to], id={"type": "wk-move", "to": to},
                     className=f"btn big btn-{to}") for to in moves],
        className="buttons big-buttons"))
    if t["status"] in worker_cases.POSTPONABLE and t["postponement_asked"] is None:
        suggested = (t["due_at"] or now) + timedelta(hours=4)
        controls.append(html.Details([
            html.Summary("Ask for more time"),
            html.Label(["New due time", dcc.Input(
                id="wk-post-due", type="datetime-local", className="field",
                value=suggested.astimezone(ctx.tz).strftime("%Y-%m-%dT%H:%M"))]),
            dcc.Textarea(id="wk-post-reason", className="note-field",
                         placeholder="Why more time is needed (required)"),
            html.Button("Send the request", id="wk-post-send", className="btn big"),
        ], className="more"))
    if t["device_kind"] == "water_meter":
        controls.append(html.Details([
            html.Summary("Resident away or in hospital"),
            dcc.RadioItems(id="wk-away-reason", value="hospital", className="choices",
                           options=[{"label": " in hospital", "value": "hospital"},
                                    {"label": " away", "value": "away"}]),
            html.Label(["Last day away", dcc.Input(
                id="wk-away-until", type="date", className="field",
                min=now.astimezone(ctx.tz).date().isoformat())]),
            html.Button("Mark: no water alerts until then", id="wk-away-mark", className="btn big"),
            html.Div(id="wk-away-msg", role="status"),
        ], className="more"))
    return controls


def _category_options(ctx: AppContext) -> list[dict[str, Any]]:
    """Categories grouped by major category (a disabled heading before each group)."""
    options: list[dict[str, Any]] = []
    major = None
    catalogue = ctx.desk.clock.catalogue
    for code, c in sorted(catalogue.categories.items()):
        if code[:3] != major:
            major = code[:3]
            options.append({"label": f"— {c.major_name} —", "value": f"group-{major}",
                            "disabled": True})
        options.append({"label": f"{c.name} ({code})", "value": code,
                        "search": f"{c.major_name} {c.name} {code}"})
    return options


def report_view(ctx: AppContext, user: WebUser) -> list[Component]:
    """The patrol form."""
    cell = (user.user.cell_code or "").strip()
    cells = phone.read_map(ctx.db)
    map_part: list[Component] = []
    if cells:
        src, bbox = svgmap.place_map(cells, own=cell, focus=[cell] if cell else [],
                                     width=MAP_SIZE[0], height=MAP_SIZE[1] + 40)
        map_part = [html.Div(
            [html.Img(id="wk-rep-map", src=src, className="place-map tap-map",
                      alt="Map of your cell: tap where the problem is",
                      **{"data-bbox": ",".join(f"{v:.6f}" for v in bbox)}),
             html.Div(id="wk-rep-dot", className="tap-dot", style={"display": "none"})],
            className="tap-wrap")]
    return [
        html.H2("Report a problem"),
        html.Label("What", htmlFor="wk-rep-cat", className="label"),
        dcc.Dropdown(id="wk-rep-cat", options=_category_options(ctx), searchable=True,
                     placeholder="Choose the category", className="dropdown",
                     optionHeight=44, maxHeight=330),
        html.Div("Where: tap the map, or use your position", className="label"),
        *map_part,
        html.Button("Use my position", id="wk-rep-gps", className="btn big btn-gps"),
        html.P("No place chosen yet.", id="wk-rep-where", className="muted", role="status"),
        html.Label("What you see", htmlFor="wk-rep-note", className="label"),
        dcc.Textarea(id="wk-rep-note", className="note-field",
                     placeholder="A few words: what, how big, anything dangerous"),
        *upload("report", "Add a photo (optional; JPEG, PNG or WebP, up to 5 MB)"),
        dcc.Checklist(id="wk-rep-fixed", className="choices tick",
                      options=[{"label": " I fixed it on the spot", "value": "fixed"}], value=[]),
        html.Button("Send the report", id="wk-rep-send", className="btn big btn-send"),
        html.Div(id="wk-rep-msg", role="status"),
        dcc.Store(id="wk-rep-pos"),
    ]


def _signature(tasks: Sequence[Mapping[str, Any]], cell: Sequence[Mapping[str, Any]]) -> (
    list[list[Any]]
):
    return [[t["id"], t["status"], t["priority"], str(t["deadline"]), t["worker_id"],
             str(t["postponement_asked"])] for t in [*tasks, *cell]]


def _tab_label(name: str, n: int) -> list[Any]:
    return [name, html.Span(str(n), className="count")] if n else [name]


def layout(ctx: AppContext) -> Component:
    """The worker's page."""
    user = require_role(*ROLES)
    now = ctx.now()
    tasks, cell, _ = phone.read_lists(ctx.db, _worker(user), now)
    return html.Div(
        [
            header("My tasks", user, "/worker", updated=updated_label(now, ctx.tz)),
            html.Nav([
                html.Button(_tab_label("My tasks", len(tasks)), id="wk-tab-tasks",
                            className="tab active"),
                html.Button(_tab_label("My cell", len(cell)), id="wk-tab-cell", className="tab"),
                html.Button("Report", id="wk-tab-report", className="tab"),
            ], className="tabs"),
            html.Section(rows_view(tasks, now, NO_TASKS), id="wk-list", className="view"),
            html.Section(rows_view(cell, now, NO_CELL_CASES, cell=True),
                         id="wk-cell-list", className="view hidden"),
            html.Section(report_view(ctx, user), id="wk-report", className="view hidden"),
            html.Section([
                html.Button("‹ Back to the list", id="wk-back", className="btn back"),
                html.P(id="wk-task-left", className="task-left"),
                html.Div(id="wk-task-body"),
                html.Div(id="wk-msg", role="status"),
                html.Div(id="wk-act"),
            ], id="wk-task", className="view hidden"),
            dcc.Store(id="wk-open"),
            dcc.Store(id="wk-tab", data="tasks"),
            dcc.Store(id="wk-sig", data=_signature(tasks, cell)),
            dcc.Store(id="wk-done", data=0),
            dcc.Interval(id="wk-tick", interval=REFRESH_MS),
        ],
        className="phone",
    )


# ---------- the browser side: small functions, no library ----------

CLIENTSIDE = {
    # a row, the back button or a tab: which case is open and which tab shows
    "pick": """
function (rows, back, tTasks, tCell, tReport, tab) {
    var ctx = dash_clientside.callback_context;
    var id = ctx.triggered_id;
    var nu = dash_clientside.no_update;
    if (!id) { return [nu, nu, nu]; }
    if (typeof id === 'object' && id.type === 'wk-open') {
        var clicked = ctx.triggered.some(function (t) { return t.value; });
        return clicked ? [id.ticket, nu, ''] : [nu, nu, nu];
    }
    if (id === 'wk-back') { return [null, nu, '']; }
    return [null, id.replace('wk-tab-', ''), ''];
}""",
    # show the open case, else the chosen tab's view
    "views": """
function (open, tab) {
    var v = function (on) { return on ? 'view' : 'view hidden'; };
    var t = function (on) { return on ? 'tab active' : 'tab'; };
    var task = open !== null && open !== undefined;
    if (task) { window.scrollTo(0, 0); }
    return [v(!task && tab === 'tasks'), v(!task && tab === 'cell'),
            v(!task && tab === 'report'), v(task),
            t(tab === 'tasks'), t(tab === 'cell'), t(tab === 'report')];
}""",
    # a tap on the report map: the place, from the picture's bounding box (svgmap.py)
    "tap": """
function (src) {
    if (!window.__wkTap) {
        window.__wkTap = true;
        document.addEventListener('click', function (e) {
            var img = e.target;
            if (!img || img.id !== 'wk-rep-map') { return; }
            var r = img.getBoundingClientRect();
            var b = img.getAttribute('data-bbox').split(',').map(Number);
            var fx = (e.clientX - r.left) / r.width, fy = (e.clientY - r.top) / r.height;
            dash_clientside.set_props('wk-rep-pos', {data: {
                lon: +(b[0] + fx * (b[2] - b[0])).toFixed(6),
                lat: +(b[3] - fy * (b[3] - b[1])).toFixed(6), source: 'map'}});
        });
    }
    return dash_clientside.no_update;
}""",
    # the chosen place as a dot on the report map
    "dot": """
function (pos) {
    var img = document.getElementById('wk-rep-map');
    if (!pos || !img) { return {display: 'none'}; }
    var b = img.getAttribute('data-bbox').split(',').map(Number);
    var fx = (pos.lon - b[0]) / (b[2] - b[0]), fy = (b[3] - pos.lat) / (b[3] - b[1]);
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) { return {display: 'none'}; }
    return {display: 'block', left: (fx * 100).toFixed(2) + '%', top: (fy * 100).toFixed(2) + '%'};
}""",
    # "use my position": the browser's geolocation
    "locate": """
function (n) {
    if (!n) { return dash_clientside.no_update; }
    var say = function (text) {
        dash_clientside.set_props('wk-rep-where', {children: text});
    };
    if (!navigator.geolocation) {
        say('This phone gives no position here: tap the map instead.');
        return dash_clientside.no_update;
    }
    say('Finding your position…');
    return new Promise(function (resolve) {
        navigator.geolocation.getCurrentPosition(function (p) {
            resolve({lon: +p.coords.longitude.toFixed(6), lat: +p.coords.latitude.toFixed(6),
                     accuracy: Math.round(p.coords.accuracy), source: 'gps'});
        }, function (err) {
            say('No position (' + err.message + '): tap the map instead.');
            resolve(dash_clientside.no_update);
        }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
    });
}""",
}


callbacks = Callbacks()
callbacks.in_browser(
    CLIENTSIDE["pick"],
    Output("wk-open", "data"), Output("wk-tab", "data"), Output("wk-msg", "children"),
    Input({"type": "wk-open", "ticket": ALL}, "n_clicks"), Input("wk-back", "n_clicks"),
    Input("wk-tab-tasks", "n_clicks"), Input("wk-tab-cell", "n_clicks"),
    Input("wk-tab-report", "n_clicks"), State("wk-tab", "data"),
    prevent_initial_call=True,
)
callbacks.in_browser(
    CLIENTSIDE["views"],
    Output("wk-list", "className"), Output("wk-cell-list", "className"),
    Output("wk-report", "className"), Output("wk-task", "className"),
    Output("wk-tab-tasks", "className"), Output("wk-tab-cell", "className"),
    Output("wk-tab-report", "className"),
    Input("wk-open", "data"), Input("wk-tab", "data"),
    prevent_initial_call=True,
)
callbacks.in_browser(CLIENTSIDE["tap"], Output("wk-rep-map", "title"), Input("wk-rep-map", "src"))
callbacks.in_browser(CLIENTSIDE["dot"], Output("wk-rep-dot", "style"),
                     Input("wk-rep-pos", "data"), prevent_initial_call=True)
callbacks.in_browser(CLIENTSIDE["locate"], Output("wk-rep-pos", "data"),
                     Input("wk-rep-gps", "n_clicks"), prevent_initial_call=True)
callbacks.in_browser(
    photos.CHECK_JS,
    Output({"type": "wk-upload-msg", "for": MATCH}, "children"),
    Output({"type": "wk-upload-msg", "for": MATCH}, "className"),
    Input({"type": "wk-upload", "for": MATCH}, "contents"),
    State({"type": "wk-upload", "for": MATCH}, "filename"), prevent_initial_call=True,
)


def upload(purpose: str, text: str) -> list[Component]:
    """A photo picker (checked in the browser at once, and again on the server)."""
    return [dcc.Upload(html.Div(text), id={"type": "wk-upload", "for": purpose},
                       accept=photos.ACCEPT, className="upload"),
            html.Div(id={"type": "wk-upload-msg", "for": purpose}, role="status")]


def _decode_photo(contents: str | None, filename: str | None) -> list[Photo]:
    return [photos.decode(contents, filename)] if contents else []


def _refusal(text: str) -> html.P:
    return html.P(f"Not done: {text}.", className="error")


@callbacks(
    Output("wk-task-body", "children"),
    Output("wk-act", "children"),
    Output("wk-task-left", "children"),
    Input("wk-open", "data"),
    Input("wk-done", "data"),
    prevent_initial_call=True,
)
def show_task(ticket_id: int | None, _done: int) -> tuple[Any, ...]:
    """The case tapped (or nothing when the list shows)."""
    user = require_role(*ROLES)
    if ticket_id is None:
        return [], [], ""
    ctx = context()
    now = ctx.now()
    t = phone.read_case(ctx.db, _worker(user), int(ticket_id), now, ctx.tz)
    if t is None:
        return ([html.P(f"Case #{ticket_id} is not yours or your cell's: it cannot be"
                        " shown.", className="error", id="wk-refused")], [], "")
    return task_body(ctx, t, now), task_actions(ctx, t, now), left_text(t, now)


@callbacks(
    Output("wk-msg", "children", allow_duplicate=True),
    Output("wk-done", "data", allow_duplicate=True),
    Input({"type": "wk-move", "to": ALL}, "n_clicks"),
    State("wk-open", "data"),
    State({"type": "wk-note", "for": ALL}, "value"),
    State({"type": "wk-upload", "for": ALL}, "contents"),
    State({"type": "wk-upload", "for": ALL}, "filename"),
    State("wk-done", "data"),
    prevent_initial_call=True,
)
def move(clicks: list[int | None], ticket_id: int | None, notes: list[str | None],
         photo: list[str | None], filename: list[str | None], done: int) -> tuple[Any, ...]:
    """Sign for, arrived, handled (with a photo), return."""
    user = require_role(*ROLES)
    trigger = dash.ctx.triggered_id
    if not trigger or not any(clicks) or ticket_id is None:
        raise PreventUpdate
    ctx = context()
    to_status = str(trigger["to"])
    try:
        files = [f for c, n in zip(photo, filename, strict=True)
                 for f in _decode_photo(c, n)] if to_status == "handled" else []
        worker_cases.move_own_case(ctx.db, int(ticket_id), to_status, _actor(user), ctx.topics,
                                   next(iter(notes), None) or "", files)
    except (TransitionError, ValueError) as exc:
        return _refusal(str(exc)), no_update
    text = f"Case #{ticket_id}: {DONE_NAMES.get(to_status, to_status)}."
    if files:
        text += " Photo stored."
    return html.P(text, className="ok"), done + 1


@callbacks(
    Output("wk-msg", "children", allow_duplicate=True),
    Output("wk-done", "data", allow_duplicate=True),
    Input("wk-post-send", "n_clicks"),
    State("wk-open", "data"),
    State("wk-post-due", "value"),
    State("wk-post-reason", "value"),
    State("wk-done", "data"),
    prevent_initial_call=True,
)
def ask_time(clicks: int | None, ticket_id: int | None, due: str | None,
             reason: str | None, done: int) -> tuple[Any, ...]:
    """Ask the centre for more time (it decides)."""
    user = require_role(*ROLES)
    if not clicks or ticket_id is None:
        raise PreventUpdate
    ctx = context()
    try:
        new_due = datetime.fromisoformat(str(due)).replace(tzinfo=ctx.tz)
    except ValueError:
        return _refusal("choose the new due time"), no_update
    try:
        worker_cases.ask_more_time(ctx.db, int(ticket_id), _actor(user), new_due, reason or "")
    except TransitionError as exc:
        return _refusal(str(exc)), no_update
    return (html.P(f"Case #{ticket_id}: more time asked until {new_due:%d %b %H:%M}; the"
                   " centre decides.", className="ok"), done + 1)


@callbacks(
    Output("wk-away-msg", "children"),
    Input("wk-away-mark", "n_clicks"),
    State("wk-open", "data"),
    State("wk-away-reason", "value"),
    State("wk-away-until", "value"),
    prevent_initial_call=True,
)
def mark_away(_clicks: int, ticket_id: int | None, reason: str, until: str | None) -> Component:
    """Mark the household of the worker's water case away or in hospital until a day."""
    user = require_role(*ROLES)
    if not ticket_id or not until:
        return html.P("Choose the last day away.", className="error")
    ctx = context()
    last_day = datetime.fromisoformat(str(until)[:10]).replace(tzinfo=ctx.tz)
    try:
        mark = away.set_mark_for_ticket(ctx.db, int(ticket_id), _worker(user),
                                        last_day + timedelta(days=1), reason, user.username,
                                        ctx.now())
    except away.AbsenceError as exc:
        return html.P(f"Not marked: {exc}.", className="error")
    return html.P(f"Marked {mark.reason} until {mark.until.astimezone(ctx.tz):%d %b}:"
                  f" no water alerts until then.", className="ok")


@callbacks(Output("wk-rep-where", "children"), Input("wk-rep-pos", "data"),
           prevent_initial_call=True)
def where(pos: Mapping[str, Any] | None) -> Any:
    """The place chosen for a report, in words (a phone's position is stored too)."""
    user = require_role(*ROLES)
    if not pos:
        raise PreventUpdate
    ctx = context()
    lon, lat = float(pos["lon"]), float(pos["lat"])
    index = ctx.desk.index()
    code = index.locate(lon, lat)
    cell = index.cells[code].name if code else "outside every grid cell"
    text = f"{lat:.5f} N, {lon:.5f} E · {cell}"
    if pos.get("source") == "gps":
        worker_cases.report_position(ctx.db, _worker(user), lon, lat, ctx.now())
        accuracy = pos.get("accuracy")
        text = f"Your position: {text}" + (f" (± {accuracy} m)" if accuracy else "")
    else:
        text = f"Tapped: {text}"
    return html.Span(text, className="chosen" if code else "error")


@callbacks(
    Output("wk-rep-msg", "children"),
    Output("wk-rep-note", "value"),
    Output("wk-rep-fixed", "value"),
    Output({"type": "wk-upload", "for": "report"}, "contents"),
    Output("wk-done", "data", allow_duplicate=True),
    Input("wk-rep-send", "n_clicks"),
    State("wk-rep-cat", "value"),
    State("wk-rep-pos", "data"),
    State("wk-rep-note", "value"),
    State("wk-rep-fixed", "value"),
    State({"type": "wk-upload", "for": "report"}, "contents"),
    State({"type": "wk-upload", "for": "report"}, "filename"),
    State("wk-done", "data"),
    prevent_initial_call=True,
)
def report(clicks: int | None, category: str | None, pos: Mapping[str, Any] | None,
           note: str | None, fixed: list[str] | None, photo: str | None,
           filename: str | None, done: int) -> tuple[Any, ...]:
    """File the worker's report; a refusal keeps everything entered."""
    user = require_role(*ROLES)
    if not clicks:
        raise PreventUpdate
    keep = (no_update,) * 4
    try:
        outcome = file_patrol_case(context(), user, category, pos, note or "", bool(fixed),
                                   photo, filename)
    except (TransitionError, ValueError) as exc:
        return (_refusal(str(exc)), *keep)
    return (outcome, "", [], None, done + 1)


@callbacks(
    Output("wk-list", "children"),
    Output("wk-cell-list", "children"),
    Output("wk-sig", "data"),
    Output("wk-tab-tasks", "children"),
    Output("wk-tab-cell", "children"),
    Output({"type": "wk-left", "ticket": ALL}, "children"),
    Output("wk-task-left", "children", allow_duplicate=True),
    Output("updated", "children", allow_duplicate=True),
    Input("wk-tick", "n_intervals"),
    Input("wk-done", "data"),
    State("wk-sig", "data"),
    State("wk-open", "data"),
    prevent_initial_call=True,
)
def refresh(_tick: int | None, _done: int, shown: list[list[Any]],
            open_id: int | None) -> tuple[Any, ...]:
    """The lists every 30 s: redrawn when they changed, else only the times left."""
    user = require_role(*ROLES)
    ctx = context()
    now = ctx.now()
    tasks, cell, opened = phone.read_lists(ctx.db, _worker(user), now,
                                           int(open_id) if open_id is not None else None)
    task_left = left_text(opened, now) if opened else ""
    left_ids = [o["id"]["ticket"] for o in dash.ctx.outputs_list[5]]
    signature = _signature(tasks, cell)
    if signature != shown:
        return (rows_view(tasks, now, NO_TASKS), rows_view(cell, now, NO_CELL_CASES, cell=True),
                signature, _tab_label("My tasks", len(tasks)),
                _tab_label("My cell", len(cell)), [no_update] * len(left_ids), task_left,
                updated_label(now, ctx.tz))
    by_id = {t["id"]: t for t in [*tasks, *cell]}
    return (no_update, no_update, no_update, no_update, no_update,
            [left_text(by_id[i], now) if i in by_id else no_update for i in left_ids],
            task_left, updated_label(now, ctx.tz))


def file_patrol_case(ctx: AppContext, user: WebUser, category: str | None,
                     pos: Mapping[str, Any] | None, note: str, fixed: bool,
                     photo: str | None, filename: str | None) -> Component:
    """File the worker's report through the intake; the answer to show (ValueError/
    TransitionError: what to correct)."""
    if not category:
        raise ValueError("choose what the problem is (the category)")
    if not pos:
        raise ValueError("choose the place: tap the map or use your position")
    if fixed and not note.strip():
        raise ValueError("say what you did when you fixed it on the spot")
    kind = ctx.desk.clock.catalogue.get(category)
    lon, lat = float(pos["lon"]), float(pos["lat"])
    index = ctx.desk.index()
    cell = index.locate(lon, lat)
    if cell is None:
        raise ValueError("that place is outside every grid cell; tap inside the map's cells")
    files = _decode_photo(photo, filename)
    case = NewCase(
        source="patrol", category=category, title=kind.name,
        description=note.strip() or kind.name, priority="urgent" if kind.urgent else "normal",
        lon=lon, lat=lat, grid_code=cell, reported_by=user.username, fixed_on_spot=fixed,
    )
    result = ctx.desk.file(case, _actor(user), photos=files,
                           closing_note=note.strip() if fixed else None)
    if result.duplicate_of is not None:
        return html.P([f"Thank you: this was already reported as case #{result.duplicate_of};"
                       f" your report (#{result.ticket_id}) is linked to it."],
                      className="ok", id="wk-rep-done")
    if fixed:
        return html.P(f"Case #{result.ticket_id} filed and closed as fixed on the spot.",
                      className="ok", id="wk-rep-done")
    return html.P(f"Case #{result.ticket_id} filed: {kind.name} ({category}),"
                  f" {STATUS_LABELS.get(result.status, result.status).lower()}.",
                  className="ok", id="wk-rep-done")


PAGE = Page(pattern="/worker", roles=ROLES, layout=layout, callbacks=(callbacks,))

"""Administration ``/admin``: device health, dead letters of the last 24 hours, and users.

Device health: counts by kind, then the devices with a problem, worst first (silent beyond their
reporting interval, sending only rejected payloads, offline, low battery), each with a sentence
from :mod:`cityops.sensing.device_health`, and unregistered ids that sent messages. Dead letters:
counts by rejection code and by reason, and the latest. Refreshes every 30 seconds. Admin only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dash import Input, Output, dcc, html
from dash.development.base_component import Component

from cityops.views import admin
from dashboards.components import KIND_NAMES, fmt_time, header, table, updated_label
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import ROLE_NAMES, require_role

ROLES = ("admin",)
REFRESH_MS = 30_000
HOURS = 24


def _read(ctx: AppContext, now: datetime) -> dict[str, Any]:
    return admin.read_admin(ctx.db, now, ctx.settings.device_health, hours=HOURS)


def content(data: Mapping[str, Any], ctx: AppContext, now: datetime) -> list[Component]:
    """The three sections of the page."""
    return [devices_section(data["health"], ctx, now), letters_section(data["dead"], ctx, now),
            users_section(data["users"], ctx, now)]


def devices_section(health: Mapping[str, Any], ctx: AppContext, now: datetime) -> Component:
    """Device health: counts by kind, the devices needing attention, unregistered senders."""
    factor = f"{health['silent_after_intervals']:g}"
    return html.Section(
        [
            html.H2("Device health"),
            table(["Kind", "Online", "Offline", "Never heard", "Silent", "Only bad payloads",
                   "Low battery", "Total"],
                  [[KIND_NAMES.get(k["kind"], k["kind"]), str(k["online"]), str(k["offline"]),
                    str(k["never"]), str(k["silent"]), str(k["bad_only"]),
                    str(k["low_battery"]), str(k["total"])]
                   for k in health["by_kind"]], class_name="device-health"),
            html.P(f"Silent: no reading for more than {factor} times the device's reporting"
                   " interval. A silent water meter is a device fault, not a home without water"
                   " use.", className="muted"),
            html.H3(f"Devices needing attention: {health['problem_count']} (worst first)"),
            table(["Device", "Kind", "Label", "Cell", "Last reading", "Status", "Battery",
                   "Health"],
                  [[d["id"], KIND_NAMES.get(d["kind"], d["kind"]), d["label"], d["cell"] or "—",
                    fmt_time(d["last_seen"], ctx.tz, now) if d["last_seen"] else "never",
                    {True: "online", False: "offline"}.get(d["online"], "unknown"),
                    f"{d['battery_pct']:.0f} %" if d["battery_pct"] is not None else "—",
                    d["status"]]
                   for d in health["problems"]], class_name="device-problems"),
            html.H3(f"Unregistered devices sending messages (last {HOURS} h)"),
            table(["Device id", "Messages", "Latest"],
                  [[u["device_id"], str(u["n"]), fmt_time(u["last_at"], ctx.tz, now)]
                   for u in health["unregistered"]], class_name="device-unregistered"),
        ],
        className="panel",
    )


def letters_section(dead: Mapping[str, Any], ctx: AppContext, now: datetime) -> Component:
    """Dead letters: counts by code and by reason, the latest."""
    return html.Section(
        [
            html.H2(f"Dead letters: {dead['total']} in the last {dead['hours']:.0f} h"),
            table(["Code", "Count", "Devices", "Latest"],
                  [[html.Code(c["code"]), str(c["n"]), str(c["devices"]),
                    fmt_time(c["last_at"], ctx.tz, now, seconds=True)]
                   for c in dead["by_code"]], class_name="dead-codes"),
            table(["Reason", "Count"], [[r["reason"], str(r["n"])] for r in dead["by_reason"]],
                  class_name="dead-reasons"),
            html.H3("Latest 20"),
            table(["Received", "Topic", "Code", "Reason", "Device", "Bytes", "Start of payload"],
                  [[fmt_time(d["received_at"], ctx.tz, now, seconds=True), d["topic"],
                    html.Code(d["code"]), d["reason"], d["device_id"] or "—", str(d["size"]),
                    html.Code(d["preview"])] for d in dead["latest"]],
                  class_name="dead-latest"),
        ],
        className="panel",
    )


def users_section(people: Sequence[Mapping[str, Any]], ctx: AppContext,
                  now: datetime) -> Component:
    """The users, their roles and linked grid workers."""
    return html.Section(
        [
            html.H2("Users"),
            table(["Username", "Name", "Role", "Grid worker", "Active", "Created"],
                  [[u["username"], u["display_name"], ROLE_NAMES[u["role"]],
                    f"{u['worker_id']} ({u['cell']})" if u["worker_id"] else "—",
                    "yes" if u["active"] else "no", fmt_time(u["created_at"], ctx.tz, now)]
                   for u in people], class_name="users"),
        ],
        className="panel",
    )


def layout(ctx: AppContext) -> Component:
    """The admin page with current figures."""
    user = require_role(*ROLES)
    now = ctx.now()
    return html.Div(
        [
            header("Administration", user, "/admin", updated=updated_label(now, ctx.tz)),
            html.Main(content(_read(ctx, now), ctx, now), id="admin-content",
                      className="admin-grid"),
            dcc.Interval(id="admin-tick", interval=REFRESH_MS),
        ],
        className="page",
    )


callbacks = Callbacks()


@callbacks(
    Output("admin-content", "children"),
    Output("updated", "children", allow_duplicate=True),
    Input("admin-tick", "n_intervals"),
    prevent_initial_call=True,
)
def refresh(_tick: int) -> tuple[list[Component], str]:
    """The periodic refresh."""
    require_role(*ROLES)
    ctx = context()
    now = ctx.now()
    return content(_read(ctx, now), ctx, now), updated_label(now, ctx.tz)


PAGE = Page(pattern="/admin", roles=ROLES, layout=layout, callbacks=(callbacks,))

"""The one alert→case policy: what case a finding or a report opens, and whether it is
dispatched now.

Every new alert opens a case (a repeat of an open alert updates it instead, :mod:`cityops.
sensing.alerts`), and so does every report a person files. :func:`plan_case` decides for every
origin of a case (docs/cases.md, "What opens a case"):

==================  =====================================  ==========================  =========
origin              category and priority                  accepted and registered by  dispatch
==================  =====================================  ==========================  =========
``sensor`` alert    by the alert's kind (:data:`ALERTS`);  the system, at once         grid now
                    priority by its severity
``device_health``   C0109 monitoring sensor fault, low     the system, at once         the unit
``scheduled``       the inspection's category (C0206)      the system, at once         grid now
``patrol``          the worker's; urgent if the category   the system, at once         grid now
                    is urgent, else as asked
``hotline``         the operator's, as for patrol          the operator filing it      grid now
``citizen``         the citizen's, as for patrol           the operations centre,      later
                                                           when it accepts the report
==================  =====================================  ==========================  =========

*grid now*: the case goes by grid cell to the on-duty worker at once
(:func:`cityops.cases.assignment.assign_ticket`); *the unit*: the case is registered for the
category's responsible unit (the operations centre's technical team for a device fault) and no
grid worker is sent; *later*: the case waits, reported, for a person at the centre.

The policy is pure: it reads nothing and decides from the origin and the category catalogue.
:mod:`cityops.cases.opening` carries a plan out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cityops.cases.categories import Catalogue

Source = Literal["sensor", "device_health", "scheduled", "patrol", "hotline", "citizen"]
RegisteredBy = Literal["system", "filer", "centre"]
Dispatch = Literal["grid", "unit", "later"]

SEVERITY_PRIORITY = {"critical": "urgent", "high": "urgent", "medium": "normal", "low": "low"}
OTHER_CATEGORY = "E9999"
SENSOR_FAULT_CATEGORY = "C0109"  # Monitoring sensor fault (the operations centre's technical team)


@dataclass(frozen=True)
class AlertCase:
    """What an alert of one kind opens: the category, the title and who goes."""

    category: str
    title: str
    dispatch: Dispatch = "grid"


# alert kind -> its case; codes from cityops/data/case_categories.toml
ALERTS: dict[str, AlertCase] = {
    "flood_depth": AlertCase("E0401", "Street flooding"),
    "manhole_tilt": AlertCase("C0101", "Manhole cover displaced"),
    "manhole_water": AlertCase("C0101", "Water standing in a manhole"),
    "water_silence": AlertCase("E0801", "Welfare check: no water use"),
    "water_running": AlertCase("E0801", "Welfare check: water running for hours"),
    "water_decline": AlertCase("E0801", "Welfare visit: water use falling for days"),
    # a stuck gauge may be blocked by debris: the cell's worker looks first
    "gauge_fault": AlertCase(SENSOR_FAULT_CATEGORY, "Flood gauge stuck: check the sensor"),
    "device_silent": AlertCase(SENSOR_FAULT_CATEGORY, "Monitoring sensor silent: check the device",
                               dispatch="unit"),
}


@dataclass(frozen=True)
class Origin:
    """Where a case would come from: an alert (kind and severity) or a person's report (the
    category chosen and the priority asked)."""

    source: Source
    alert_kind: str | None = None
    severity: str | None = None
    category: str | None = None
    priority: str = "normal"


@dataclass(frozen=True)
class CasePlan:
    """What the policy decided: the case's source, category, title and priority, who accepts and
    registers it, and who goes."""

    source: str
    category: str
    title: str
    priority: str
    registered_by: RegisteredBy
    dispatch: Dispatch

    @property
    def urgent(self) -> bool:
        """An urgent case: its limits run in clock time and it goes to the nearest worker."""
        return self.priority == "urgent"


def plan_case(origin: Origin, catalogue: Catalogue | None = None) -> CasePlan:
    """The plan for a case from ``origin`` (the table of the module docstring); a person's report
    needs the ``catalogue`` (its category decides the priority). Raises ValueError for an
    unknown source, severity or category."""
    if origin.source in ("sensor", "device_health"):
        if origin.severity not in SEVERITY_PRIORITY:
            raise ValueError(f"an alert's severity is one of {', '.join(SEVERITY_PRIORITY)},"
                             f" not {origin.severity!r}")
        kind = origin.alert_kind or ""
        case = ALERTS.get(kind, AlertCase(OTHER_CATEGORY, kind or "Sensor alert"))
        return CasePlan("sensor", case.category, case.title,
                        SEVERITY_PRIORITY[origin.severity], "system", case.dispatch)
    if origin.source not in ("scheduled", "patrol", "hotline", "citizen"):
        raise ValueError(f"unknown case origin {origin.source!r}")
    if catalogue is None:
        raise ValueError("a report's plan needs the category catalogue")
    category = catalogue.get(origin.category or "")
    priority = "urgent" if category.urgent else origin.priority
    registered_by: RegisteredBy = {"citizen": "centre", "hotline": "filer"}.get(
        origin.source, "system")  # type: ignore[assignment]
    dispatch: Dispatch = "later" if origin.source == "citizen" else "grid"
    return CasePlan(origin.source, category.code, category.name, priority, registered_by,
                    dispatch)

"""The devices the simulator speaks for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimDevice:
    """A device the simulator speaks for; household facts matter for water meters only."""

    id: str
    kind: str
    household_id: str | None = None
    elderly_alone: bool = False
    members: int = 1

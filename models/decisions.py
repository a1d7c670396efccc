"""What a detector concludes: raise an alert (with a plain sentence) or clear one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Action = Literal["raise", "clear"]


@dataclass(frozen=True)
class Decision:
    """What a detector concluded at ``observed_at``."""

    kind: str
    action: Action
    observed_at: datetime
    severity: str = "low"
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def duration_text(delta: timedelta) -> str:
    """'12 h 50 min', '45 min'."""
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"

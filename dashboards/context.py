"""What every page and callback needs: the connection pool, the settings and the clock."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
from dash import Dash
from psycopg_pool import ConnectionPool

from cityops.platform.settings import Settings
from cityops.platform.topics import Topics

if TYPE_CHECKING:
    from dash.development.base_component import Component

    from dashboards.auth import WebUser

Pool = ConnectionPool[psycopg.Connection[dict[str, Any]]]


@dataclass(frozen=True)
class AppContext:
    """Shared, read-only state of one web app (it keeps nothing between requests)."""

    pool: Pool
    settings: Settings

    @property
    def tz(self) -> ZoneInfo:
        """The district's local time zone, for every time shown."""
        return self.settings.tz

    @property
    def topics(self) -> Topics:
        """MQTT topic names (commands refresh a worker's phone through the outbox)."""
        return Topics(self.settings.topic_prefix)

    @staticmethod
    def now() -> datetime:
        """The current time (UTC)."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class Page:
    """A page of the app: its path, who may open it, how it is drawn and its callbacks.

    ``layout(ctx, **params)`` checks the signed-in user's role itself (raising Forbidden);
    ``may_open(ctx, user, **params)`` adds a per-object check (a worker's own ticket).
    """

    pattern: str
    roles: tuple[str, ...]
    layout: Callable[..., Component]
    register: Callable[[Dash, AppContext], None]
    may_open: Callable[..., bool] | None = None
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))

    def allows(self, ctx: AppContext, user: WebUser, params: dict[str, str]) -> bool:
        """True when ``user`` may open this page with these path parameters."""
        if user.role not in self.roles:
            return False
        return self.may_open is None or self.may_open(ctx, user, **params)


def resolve(pages: Sequence[Page], path: str) -> tuple[Page, dict[str, str]] | None:
    """The page a path names and its parameters, or None."""
    normalised = path.rstrip("/") or "/"
    for page in pages:
        match = page.regex.fullmatch(normalised)
        if match:
            return page, match.groupdict()
    return None

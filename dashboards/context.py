"""What every page, callback and route needs, and how pages declare themselves.

:class:`AppContext` holds the :class:`~cityops.platform.database.Database` (which pages hand to
``cityops`` service functions and never open themselves), the settings and the clock; the router
passes it to each page's layout, and callbacks and routes find it with :func:`context`.

Callbacks are module-level functions of their page module, declared with the module's
:class:`Callbacks` (``@callbacks(Output(...), Input(...))``, Dash's decorator style) and attached
to each app built: one process may build several apps (the tests do), which Dash's global
``dash.callback`` registry does not allow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from dash import Dash
from dash.development.base_component import Component
from flask import current_app

from cityops.cases.intake import IntakeDesk
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from cityops.platform.topics import Topics
from dashboards.users import WebUser

EXTENSION = "cityops"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class AppContext:
    """Shared, read-only state of one web app (it keeps nothing between requests)."""

    db: Database
    settings: Settings
    desk: IntakeDesk  # files cases from people; its ``clock`` has the categories and calendar

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


def context() -> AppContext:
    """The context of the app serving this request (inside a callback or a route)."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


class Callbacks:
    """The callbacks of one module, kept until an app attaches them."""

    def __init__(self) -> None:
        self._declared: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self._browser: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *dependencies: Any, **options: Any) -> Callable[[F], F]:
        """Declare the decorated function a callback (the arguments of ``Dash.callback``)."""
        def declare(function: F) -> F:
            self._declared.append((function, dependencies, options))
            return function
        return declare

    def in_browser(self, script: str, *dependencies: Any, **options: Any) -> None:
        """Declare a callback that runs in the browser (``Dash.clientside_callback``)."""
        self._browser.append((script, dependencies, options))

    def attach(self, app: Dash) -> None:
        """Register every declared callback with ``app``."""
        for function, dependencies, options in self._declared:
            app.callback(*dependencies, **options)(function)
        for script, dependencies, options in self._browser:
            app.clientside_callback(script, *dependencies, **options)


@dataclass(frozen=True)
class Page:
    """A page of the app: its path, who may open it, how it is drawn and its callbacks.

    ``layout(ctx, **params)`` checks the signed-in user's role itself (raising Forbidden);
    ``may_open(ctx, user, **params)`` adds a per-object check (a worker's own ticket).
    """

    pattern: str
    roles: tuple[str, ...]
    layout: Callable[..., Component]
    callbacks: tuple[Callbacks, ...] = ()
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

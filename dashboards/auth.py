"""Sign-in, sign-out and the access guard (Flask-Login; sessions live in a signed cookie).

The guard runs before every request: /login, the Dash component bundles, /assets/ and the favicon
are public, and so is the Open311 API (/open311/, dashboards/open311.py); /photos/ and
/needs/export check the role themselves (dashboards/photo_route.py, dashboards/needs_export.py);
an anonymous page request is sent to /login, an
anonymous ``/_dash-*`` request gets 401; a page the user's role may not open gets 403.
Callbacks check the role again themselves (:func:`require_role`), because one endpoint serves
every callback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from flask import Flask, redirect, render_template_string, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.exceptions import Forbidden, Unauthorized
from werkzeug.wrappers import Response

from cityops.platform import users
from cityops.platform.users import User
from dashboards.context import AppContext, Page, resolve

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/login", "/logout"})
PUBLIC_PREFIXES = ("/_dash-component-suites/", "/assets/", "/_favicon", "/open311/")
# signed-in routes that check the role themselves
SELF_CHECKED_PREFIXES = ("/photos/", "/needs/export")
LANDING = {"operations": "/", "admin": "/", "grid_worker": "/worker", "civil_affairs": "/civil",
           "hotline": "/hotline", "supervisor": "/verify"}
ROLE_NAMES = {
    "operations": "Operations centre",
    "admin": "Administrator",
    "grid_worker": "Grid worker",
    "civil_affairs": "Civil affairs",
    "hotline": "12345 hotline",
    "supervisor": "Supervisor",
}

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CityOps — sign in</title><link rel="icon" href="/_favicon.ico">
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="plain"><main class="login-box">
<h1>CityOps</h1><p class="muted">District operations centre</p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<label>Username <input id="username" name="username" autocomplete="username" required
 value="{{ username }}" autofocus></label>
<label>Password <input id="password" name="password" type="password"
 autocomplete="current-password" required></label>
<button id="login-button" type="submit">Sign in</button>
</form></main></body></html>"""

FORBIDDEN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CityOps — not allowed</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/_favicon.ico"><link rel="stylesheet" href="/assets/style.css"></head>
<body class="plain"><main class="login-box"><h1>Not allowed</h1>
<p>You are signed in as {{ name }} ({{ role }}). This page is not for your role.</p>
<p><a href="{{ home }}">Go to your page</a> · <a href="/logout">Sign out</a></p>
</main></body></html>"""


class WebUser(UserMixin):
    """A signed-in user as Flask-Login sees it."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return self.user.username

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def worker_id(self) -> str | None:
        return self.user.worker_id

    @property
    def display_name(self) -> str:
        return self.user.display_name


def signed_in() -> WebUser | None:
    """The signed-in user of this request, or None."""
    if not current_user.is_authenticated:
        return None
    user = current_user._get_current_object()  # the WebUser behind the proxy
    assert isinstance(user, WebUser)
    return user


def require_role(*roles: str) -> WebUser:
    """The signed-in user if their role is one of ``roles``; else 401 (anonymous) or 403."""
    user = signed_in()
    if user is None:
        raise Unauthorized("sign in first")
    if user.role not in roles:
        raise Forbidden(f"a {user.role} user may not do this")
    return user


def _safe_next(target: str) -> str | None:
    """A local path to return to after sign-in, or None for anything else."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def install(server: Flask, ctx: AppContext, pages: Sequence[Page]) -> None:
    """Add Flask-Login, the /login and /logout routes and the access guard to the server."""
    manager = LoginManager()
    manager.init_app(server)

    @manager.user_loader
    def load_user(username: str) -> WebUser | None:
        with ctx.pool.connection() as conn:
            user = users.get_user(conn, username)
        return WebUser(user) if user else None

    def landing_for(user: WebUser, wanted: str | None) -> str:
        if wanted:
            match = resolve(pages, urlsplit(wanted).path)
            if match and match[0].allows(ctx, user, match[1]):
                return wanted
        return LANDING[user.role]

    def login_form(error: str = "", status: int = 200) -> Response:
        token = session.setdefault("login_csrf", secrets.token_urlsafe(24))
        html = render_template_string(
            LOGIN_PAGE,
            error=error,
            csrf=token,
            next=request.values.get("next", ""),
            username=request.form.get("username", ""),
        )
        return Response(html, status=status, mimetype="text/html")

    def login() -> Response:
        if request.method == "GET":
            user = signed_in()
            if user is not None:
                return redirect(landing_for(user, _safe_next(request.args.get("next", ""))))
            return login_form()
        expected = session.get("login_csrf")
        if not expected or not secrets.compare_digest(expected, request.form.get("csrf", "")):
            return login_form("The form expired; please sign in again.", 400)
        username = request.form.get("username", "").strip().lower()
        with ctx.pool.connection() as conn:
            user = users.authenticate(conn, username, request.form.get("password", ""))
            if user is not None:
                users.audit(conn, user.username, "sign_in", "web", {"ip": request.remote_addr})
        if user is None:
            log.warning("failed sign-in", extra={"username": username})
            return login_form("Wrong username or password.", 401)
        session.pop("login_csrf", None)
        web_user = WebUser(user)
        login_user(web_user)
        return redirect(landing_for(web_user, _safe_next(request.form.get("next", ""))))

    def logout() -> Response:
        logout_user()
        return redirect("/login")

    def guard() -> Response | None:
        path = request.path
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        user = signed_in()
        if user is None:
            if path.startswith("/_"):
                return Response('{"error": "sign in first"}', 401, mimetype="application/json")
            return redirect("/login?next=" + quote(request.full_path.rstrip("?"), safe="/"))
        if path.startswith(("/_", *SELF_CHECKED_PREFIXES)):
            return None  # callbacks and these routes check the role themselves
        match = resolve(pages, path)
        if match is None:
            return Response("Not found", 404, mimetype="text/plain")
        page, params = match
        if not page.allows(ctx, user, params):
            html = render_template_string(
                FORBIDDEN_PAGE, name=user.display_name, role=ROLE_NAMES[user.role],
                home=LANDING[user.role],
            )
            return Response(html, 403, mimetype="text/html")
        return None

    server.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout, methods=["GET"])
    server.before_request(guard)

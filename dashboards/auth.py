"""Sign-in, sign-out and the access guard (Flask-Login; sessions live in a signed cookie).

The guard runs before every request: /login, the Dash component bundles, /assets/ and the favicon
are public, and so is the Open311 API (/open311/, dashboards/open311.py); /photos/ and
/needs/export check the role themselves (dashboards/photo_route.py, dashboards/needs_export.py);
an anonymous page request is sent to /login, an
anonymous ``/_dash-*`` request gets 401; a page the user's role may not open gets 403.
Callbacks check the role again themselves (:func:`dashboards.users.require_role`), because one
endpoint serves every callback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from flask import Flask, current_app, redirect, render_template_string, request, session
from flask_login import LoginManager, login_user, logout_user
from werkzeug.wrappers import Response

from cityops.platform import users
from dashboards.context import Page, context, resolve
from dashboards.users import ROLE_NAMES, WebUser, signed_in

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/login", "/logout"})
PUBLIC_PREFIXES = ("/_dash-component-suites/", "/assets/", "/_favicon", "/open311/")
# signed-in routes that check the role themselves
SELF_CHECKED_PREFIXES = ("/photos/", "/needs/export")
LANDING = {"operations": "/", "admin": "/", "grid_worker": "/worker", "civil_affairs": "/civil",
           "hotline": "/hotline", "supervisor": "/verify"}

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


def _safe_next(target: str) -> str | None:
    """A local path to return to after sign-in, or None for anything else."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


PAGES = "cityops.pages"


def install(server: Flask, pages: Sequence[Page]) -> None:
    """Add Flask-Login, the /login and /logout routes and the access guard to the server."""
    server.extensions[PAGES] = tuple(pages)
    manager = LoginManager()
    manager.init_app(server)
    manager.user_loader(load_user)
    server.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout, methods=["GET"])
    server.before_request(guard)


def _pages() -> tuple[Page, ...]:
    return current_app.extensions[PAGES]  # type: ignore[no-any-return]


def load_user(username: str) -> WebUser | None:
    """The session's user, read on each request (a disabled user is signed out)."""
    user = users.load_user(context().db, username)
    return WebUser(user) if user else None


def landing_for(user: WebUser, wanted: str | None) -> str:
    """Where a user goes after sign-in: the page asked for if they may open it, else theirs."""
    if wanted:
        match = resolve(_pages(), urlsplit(wanted).path)
        if match and match[0].allows(context(), user, match[1]):
            return wanted
    return LANDING[user.role]


def login_form(error: str = "", status: int = 200) -> Response:
    """The sign-in form (with a CSRF token of the session)."""
    token = session.setdefault("login_csrf", secrets.token_urlsafe(24))
    html = render_template_string(
        LOGIN_PAGE, error=error, csrf=token, next=request.values.get("next", ""),
        username=request.form.get("username", ""),
    )
    return Response(html, status=status, mimetype="text/html")


def login() -> Response:
    """GET: the form (or the landing page when signed in); POST: sign in."""
    if request.method == "GET":
        user = signed_in()
        if user is not None:
            return redirect(landing_for(user, _safe_next(request.args.get("next", ""))))
        return login_form()
    expected = session.get("login_csrf")
    if not expected or not secrets.compare_digest(expected, request.form.get("csrf", "")):
        return login_form("The form expired; please sign in again.", 400)
    username = request.form.get("username", "").strip().lower()
    user = users.sign_in(context().db, username, request.form.get("password", ""),
                         request.remote_addr)
    if user is None:
        log.warning("failed sign-in", extra={"username": username})
        return login_form("Wrong username or password.", 401)
    session.pop("login_csrf", None)
    web_user = WebUser(user)
    login_user(web_user)
    return redirect(landing_for(web_user, _safe_next(request.form.get("next", ""))))


def logout() -> Response:
    """Sign out and go to the form."""
    logout_user()
    return redirect("/login")


def guard() -> Response | None:
    """Before every request: public paths pass; anonymous users sign in (401 for callbacks);
    a page the user's role may not open is refused with 403."""
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
    match = resolve(_pages(), path)
    if match is None:
        return Response("Not found", 404, mimetype="text/plain")
    page, params = match
    if not page.allows(context(), user, params):
        html = render_template_string(FORBIDDEN_PAGE, name=user.display_name,
                                      role=ROLE_NAMES[user.role], home=LANDING[user.role])
        return Response(html, 403, mimetype="text/html")
    return None

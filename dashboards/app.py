"""The CityOps web app: Dash on Flask, one router over the pages, stateless behind any WSGI server.

``create_app(db, settings)`` returns the ``dash.Dash`` app; ``app.server`` is the Flask app to
hand to a WSGI server, ``app.run(host, port)`` serves it for development. Sessions live in a
signed cookie (``settings.secret_key``), so any number of processes can serve the same users.

Everything the browser loads comes from this server (component bundles, plotly.js, the style
sheet); a Content-Security-Policy header makes the browser refuse anything else, so the screens
work on an intranet with no internet.
"""

from __future__ import annotations

from pathlib import Path

from dash import Dash, Input, Output, dcc, html
from dash.development.base_component import Component
from flask import Flask, Response, current_app
from flask_compress import Compress
from werkzeug.exceptions import Forbidden, Unauthorized

from cityops.cases.intake import IntakeDesk
from cityops.platform.database import Database
from cityops.platform.settings import Settings
from dashboards import auth, needs_export, open311, photo_route
from dashboards.components import message_view
from dashboards.context import EXTENSION, AppContext, Callbacks, Page, context, resolve
from dashboards.pages import (
    admin,
    civil,
    flood,
    hotline,
    needs_fairness,
    needs_household,
    needs_import,
    needs_review,
    needs_summary,
    needs_tasks,
    report,
    reviews,
    ticket,
    verify,
    wall,
    worker,
)
from dashboards.users import signed_in

PAGES: tuple[Page, ...] = (
    wall.PAGE,
    ticket.PAGE,
    worker.PAGE,
    civil.PAGE,
    admin.PAGE,
    hotline.PAGE,
    verify.PAGE,
    flood.PAGE,
    report.PAGE,
    reviews.PAGE,
    needs_fairness.PAGE,
    needs_household.PAGE,
    needs_import.PAGE,
    needs_review.PAGE,
    needs_review.SECOND_LOOK_PAGE,
    needs_summary.PAGE,
    needs_tasks.PAGE,
)
ASSETS = Path(__file__).parent / "assets"


def _content_security_policy(app: Dash) -> str:
    scripts = " ".join(["'self'", *app.csp_hashes()])
    return (
        "default-src 'self'; "
        f"script-src {scripts}; "
        "style-src 'self' 'unsafe-inline'; "  # Dash and plotly.js set inline styles
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; child-src 'self' blob:; "  # MapLibre's web workers
        "frame-ancestors 'self'; form-action 'self'; base-uri 'self'"
    )


callbacks = Callbacks()


@callbacks(Output("page", "children"), Input("url", "pathname"))
def route(pathname: str | None) -> Component:
    """Draw the page the address names (each layout checks the user's role again)."""
    user = signed_in()
    if user is None:
        raise Unauthorized("sign in first")
    match = resolve(PAGES, pathname or "/")
    if match is None:
        return message_view("Page not found", f"There is no page {pathname}.", user)
    page, params = match
    try:
        return page.layout(context(), **params)
    except Forbidden:
        return message_view("Not allowed", "This page is not for your role.", user)


def create_app(db: Database, settings: Settings) -> Dash:
    """Build the web app on the CityOps database (pages call ``cityops`` services with it).

    Raises ValueError when ``settings.secret_key`` is not set: sessions must survive a restart
    and be shared by every process serving the app.
    """
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        raise ValueError("the web app needs a session key: set CITYOPS_SECRET_KEY")
    server = Flask("dashboards")
    server.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    # gzip/brotli for text: the Dash bundles shrink about 4x, which matters on a worker's phone
    Compress(server)
    server.extensions[EXTENSION] = AppContext(db=db, settings=settings,
                                              desk=IntakeDesk(db, settings))
    auth.install(server, PAGES)
    server.register_blueprint(open311.blueprint)
    server.register_blueprint(photo_route.blueprint)
    server.register_blueprint(needs_export.blueprint)
    app = Dash(
        "dashboards",
        server=server,
        assets_folder=str(ASSETS),
        title="CityOps",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.layout = html.Div([dcc.Location(id="url"), html.Div(id="page")])
    attached = [callbacks]
    for page in PAGES:
        attached += [c for c in page.callbacks if c not in attached]
    for declared in attached:
        declared.attach(app)

    server.config["CONTENT_SECURITY_POLICY"] = _content_security_policy(app)
    server.after_request(security_headers)
    return app


def security_headers(response: Response) -> Response:
    """Every answer: only this server's scripts, styles and images; no sniffing or referrers."""
    policy = current_app.config["CONTENT_SECURITY_POLICY"]
    response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response

"""The web app is put together from module-level callbacks: every page's callbacks are attached to
every app built, also to a second app in the same process (Dash's global registry would give them
to the first one only). No database: the app is built on a pool that never connects."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from cityops.platform.database import Database
from cityops.platform.settings import Settings
from dashboards.app import PAGES, create_app

SETTINGS = Settings(secret_key="assembly-test-key-0123456789abcdef")


def build() -> set[str]:
    pool: ConnectionPool = ConnectionPool("postgresql://nobody@127.0.0.1:1/none", open=False)
    app = create_app(Database(pool), SETTINGS)
    app._setup_server()  # what Dash does on the first request: the callbacks are registered
    return set(app.callback_map)


def test_two_apps_in_one_process_both_have_every_callback() -> None:
    first, second = build(), build()
    assert first == second
    assert "page.children" in first  # the router
    for part in ("wall-vitals", "flood-side", "wall-metrics", "tk-body", "wk-list", "hl-result",
                 "needs-table", "look-content", "nh-msg", "tasks-list", "needs-summary-groups",
                 "admin-content", "civil-table", "vf-msg", "rv-msg", "report-table"):
        assert any(part in output for output in first), part


def test_every_page_has_a_role_list_and_a_layout() -> None:
    assert len({p.pattern for p in PAGES}) == len(PAGES)
    for page in PAGES:
        assert page.roles and callable(page.layout), page.pattern

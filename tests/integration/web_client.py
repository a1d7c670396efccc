"""The web app through Flask's test client: a served app over the shared scenario, signing in,
and calling a page or a callback as the browser would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dash import Dash
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cityops.platform.database import Database
from cityops.platform.settings import Settings
from dashboards.app import create_app
from tests.integration.scenario import PASSWORD, Scenario, build_scenario


@dataclass
class Web:
    app: Dash
    scenario: Scenario

    def client(self) -> FlaskClient:
        return self.app.server.test_client()


@pytest.fixture
def web(db_url: str) -> Iterator[Web]:
    """The app over :func:`build_scenario`'s district."""
    scenario = build_scenario(db_url)
    database = Database.open(db_url, max_size=4, name="auth-test")
    try:
        yield Web(create_app(database, Settings(secret_key="auth-test-key-0123456789abcdef")),
                  scenario)
    finally:
        database.close()


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD,
            next_path: str = "") -> TestResponse:
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf": token.group(1), "next": next_path})


def callback(client: FlaskClient, output_part: str, inputs: list[Any],
             state: list[Any] | None = None, changed: dict[str, Any] | None = None,
             wildcard_outputs: list[Any] | None = None, input_part: str = "") -> TestResponse:
    """Call the app's callback whose output names ``output_part`` (and whose inputs name
    ``input_part``), as the browser would (``changed``: the input that fired, by default the
    first; ``wildcard_outputs``: the components an ALL output matches, in the browser's current
    page)."""
    deps = client.get("/_dash-dependencies").json
    assert isinstance(deps, list)
    dep = next(d for d in deps if output_part in d["output"]
               and input_part in json.dumps(d["inputs"]))
    outputs: list[Any] = []
    for part in dep["output"].strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        if ident.startswith("{"):
            outputs.append(wildcard_outputs or [])
        else:
            outputs.append({"id": ident, "property": prop.split("@")[0]})
    changed = changed or inputs[0]
    changed_id = json.dumps(changed["id"], separators=(",", ":"), sort_keys=True) \
        if isinstance(changed["id"], dict) else changed["id"]
    body = {
        "output": dep["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": inputs,
        "state": state or [],
        "changedPropIds": [f"{changed_id}.{changed['property']}"],
    }
    return client.post("/_dash-update-component", json=body)


def route(client: FlaskClient, path: str) -> TestResponse:
    """Draw the page at ``path`` (the router's callback)."""
    return callback(client, "page.children", [{"id": "url", "property": "pathname",
                                               "value": path}])

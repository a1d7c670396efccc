"""Civil affairs ``/needs/import``: add or update households and their indicators from a CSV file.

The same import as ``cityops needs import-households`` (cityops/needs/imports.py, format in
docs/needs.md): each bad row is refused with its line and reason, every good row is stored, and a
summary says how many of each. Civil-affairs staff only; each import is written to the audit log.
"""

from __future__ import annotations

import base64
import binascii

from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from cityops.needs.imports import COLUMNS, REQUIRED, ImportResult, import_file
from dashboards.components import header, table
from dashboards.context import AppContext, Callbacks, Page, context
from dashboards.users import require_role

ROLES = ("civil_affairs",)
MAX_BYTES = 20 * 1024 * 1024
SHOWN_REFUSALS = 500


def result_view(name: str, result: ImportResult) -> Component:
    """The import's summary and each refused line with its reason."""
    refused = result.refused
    summary = (f"{name}: {result.inserted:,} added, {result.updated:,} updated,"
               f" {len(refused):,} refused ({result.households_created:,} new households).")
    parts: list[Component] = [html.P(summary, id="needs-import-summary",
                                     className="error" if refused else "ok")]
    if refused:
        more = len(refused) - SHOWN_REFUSALS
        parts += [
            html.P("The refused lines were not stored; correct them and import the file again"
                   " (rows already stored are updated, not duplicated)."),
            table(["Line", "Why it was refused"],
                  [[str(line), reason] for line, reason in refused[:SHOWN_REFUSALS]],
                  class_name="refusals"),
        ]
        if more > 0:
            parts.append(html.P(f"+ {more:,} more refused lines.", className="muted"))
    if result.inserted or result.updated:
        parts.append(html.P("The stored households are scored at the scheduler's next daily"
                            " run (or when `cityops needs score` is run).", className="muted"))
    return html.Div(parts)


def run_import(ctx: AppContext, username: str, name: str, content: bytes) -> Component:
    """Import an uploaded file as ``username``: the result, or why the file was refused whole."""
    try:
        result = import_file(ctx.db, username, content, name)
    except ValueError as exc:
        return html.P(f"Not imported: {exc}.", id="needs-import-summary", className="error")
    return result_view(name, result)


def layout(ctx: AppContext) -> Component:
    """The upload form and the file format."""
    user = require_role(*ROLES)
    optional = [c for c in COLUMNS if c not in REQUIRED]
    return html.Div(
        [
            header("Import households", user, "/needs/import"),
            html.Main(
                [
                    html.P("A CSV file (UTF-8, up to 20 MB) with a header row; the columns may"
                           " come in any order. Each row is checked on its own: a bad row is"
                           " refused with its line and the reason, every good row is stored."),
                    html.P(["Required columns: ", html.Code(", ".join(REQUIRED))]),
                    html.P(["Optional columns: ", html.Code(", ".join(optional)),
                            " (a new household needs community_code, head_name, address and"
                            " members; empty indicator cells of income, assets, floor area,"
                            " spending and unemployment are derived from the achievements)."],
                           className="muted"),
                    dcc.Upload(
                        id="needs-import-upload",
                        children=html.Div(["Drop a CSV file here, or ",
                                           html.A("choose one", className="link")]),
                        accept=".csv,text/csv", max_size=MAX_BYTES, multiple=False,
                        className="upload",
                    ),
                    dcc.Loading(html.Div(id="needs-import-result", role="status")),
                ],
                className="panel",
            ),
        ],
        className="page",
    )


callbacks = Callbacks()


@callbacks(
    Output("needs-import-result", "children"),
    Input("needs-import-upload", "contents"),
    State("needs-import-upload", "filename"),
    prevent_initial_call=True,
)
def upload(contents: str | None, filename: str | None) -> Component:
    """Import each uploaded file."""
    user = require_role(*ROLES)
    if not contents:
        raise PreventUpdate
    name = filename or "the file"
    try:
        content = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error):
        return html.P(f"Not imported: {name} did not arrive whole; choose it again.",
                      id="needs-import-summary", className="error")
    return run_import(context(), user.username, name, content)


PAGE = Page(pattern="/needs/import", roles=ROLES, layout=layout, callbacks=(callbacks,))

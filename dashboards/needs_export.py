"""``GET /needs/export.csv`` and ``/needs/export.xlsx``: every household of the needs review list
matching the filters given as query parameters (``street``, ``community``, ``type``, ``band``,
``second_look``), ranked as the list is. Civil-affairs staff only (anyone else 403, an anonymous
visitor 401 or the sign-in page); every export is written to the audit log with its filters and
households in the same transaction as the read. The answer is never cached.

Text cells that a spreadsheet would run as a formula (starting with = + - @) are written as text:
in the CSV behind a leading apostrophe, in the Excel file as string cells.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from flask import Blueprint, Response, request
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from cityops.needs import review as needs_review
from cityops.needs.review import EXPORT_COLUMNS, FilterError, ReviewFilters, ReviewRow
from dashboards.context import context
from dashboards.users import signed_in

ROLES = ("civil_affairs",)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TYPES = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def csv_bytes(rows: Sequence[ReviewRow]) -> bytes:
    """The export as CSV (UTF-8 with a byte-order mark, so Excel reads the names right)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for rank, row in enumerate(rows, 1):
        writer.writerow([f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_START) else v
                         for v in needs_review.export_record(rank, row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(rows: Sequence[ReviewRow]) -> bytes:
    """The export as an Excel workbook of one sheet, text cells always text."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("needs review")
    sheet.append(list(EXPORT_COLUMNS))
    for rank, row in enumerate(rows, 1):
        cells = []
        for value in needs_review.export_record(rank, row):
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


blueprint = Blueprint("needs_export", __name__)


@blueprint.get("/needs/export.<fmt>")
def export(fmt: str) -> Response:
    """The export file, the export audited with its filters and households."""
    if fmt not in TYPES:
        return Response("exports are .csv or .xlsx", 404, mimetype="text/plain")
    user = signed_in()
    if user is None:
        return Response("sign in first", 401, mimetype="text/plain")
    if user.role not in ROLES:
        return Response("this export is not for your role", 403, mimetype="text/plain")
    try:
        filters = ReviewFilters.from_query(request.args)
    except FilterError as exc:
        return Response(f"Not exported: {exc}. Use the export links of the /needs page.",
                        400, mimetype="text/plain")
    ctx = context()
    rows = needs_review.export_for(ctx.db, user.username, filters, fmt)
    body = csv_bytes(rows) if fmt == "csv" else xlsx_bytes(rows)
    day = ctx.now().astimezone(ctx.tz).date().isoformat()
    response = Response(body, mimetype=TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="needs-review-{day}.{fmt}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response

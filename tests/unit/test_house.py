"""The shape of the house holds (tools/house.py: rooms, no connection in the web app or ingest,
module-level callbacks, the import contracts)."""

from __future__ import annotations

from tools import house


def test_the_house_has_its_shape() -> None:
    assert len(house.top_modules()) <= house.MAX_TOP_MODULES
    assert house.room_problems() == []
    assert house.connection_uses() == []
    assert house.callback_problems() == []
    kept, summary = house.import_contracts()
    assert kept, summary


def test_the_connection_check_sees_a_connection_in_code_but_not_in_a_docstring(tmp_path) -> None:
    module = tmp_path / "page.py"
    module.write_text('"""Pages never call db.transaction() themselves."""\n\n'
                      "def read(db):\n    with db.transaction() as conn:  # the wrong room\n"
                      "        return conn\n")
    assert [n for n, line in house._code_lines(module) if house.CONNECTION_USE.search(line)] \
        == [4]

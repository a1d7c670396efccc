"""The case-category catalogue: the packaged file, look-ups, and bad files rejected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cityops.cases.categories import Catalogue, Category, load_categories

CATALOGUE = load_categories()


def test_packaged_catalogue() -> None:
    assert CATALOGUE.version
    assert len(CATALOGUE.categories) >= 30
    for code, category in CATALOGUE.categories.items():
        assert re.fullmatch(r"[CE][0-9]{4}", code)
        assert category.code == code and category.type == code[0]
        assert category.handle_hours > 0 and category.unit and category.name
    for code in ("E0401", "C0101", "C0109", "E0801", "E9999"):  # other code relies on these
        assert code in CATALOGUE.categories


def test_known_categories() -> None:
    flood = CATALOGUE.get("E0401")
    assert flood == Category(
        "E0401", "E", "Emergencies", "Road waterlogging", 2, "Drainage company", True, True
    )
    cover = CATALOGUE.get("C0101")
    assert cover.urgent and cover.public and cover.major_name == "Public facilities"
    sensor = CATALOGUE.get("C0109")
    assert not sensor.public and not sensor.urgent  # defaults when the file leaves them out
    assert not CATALOGUE.get("E0801").public  # welfare checks come from sensors, not citizens


def test_unknown_code() -> None:
    with pytest.raises(ValueError, match=r"unknown case category 'X0101'.*categories_file"):
        CATALOGUE.get("X0101")
    assert CATALOGUE.label("X0101") == "X0101"
    assert CATALOGUE.label("E0401") == "E0401 Road waterlogging"


def test_public_categories() -> None:
    public = CATALOGUE.public()
    codes = [c.code for c in public]
    assert codes == sorted(codes) and all(c.public for c in public)
    assert "E0401" in codes and "C0109" not in codes and "E0801" not in codes


def test_catalogue_is_plain_data() -> None:
    one = Category("E0101", "E", "Appearance", "Garbage", 4, "Sanitation", False, True)
    catalogue = Catalogue("test", {"E0101": one})
    assert catalogue.public() == [one] and catalogue.get("E0101") is one


GOOD_MINOR = '{ code = "01", name = "Garbage", handle_hours = 4, unit = "Sanitation" }'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "categories.toml"
    path.write_text(text)
    return path


def major(minor: str = GOOD_MINOR, type_: str = "E", code: str = "01") -> str:
    return f'[[major]]\ntype = "{type_}"\ncode = "{code}"\nname = "Appearance"\nminor = [{minor}]\n'


def test_custom_file(tmp_path: Path) -> None:
    catalogue = load_categories(write(tmp_path, 'version = "v1"\n' + major()))
    assert catalogue.version == "v1" and list(catalogue.categories) == ["E0101"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (major(), "version: Field required"),
        ('version = "v1"\n', "major: Field required"),
        ('version = "v1"\n' + major(type_="X"), "major category 1 (X01): type: Input should be"),
        ('version = "v1"\n' + major(code="1"), "major category 1 (E1): code: String should match"),
        ('version = "v1"\n' + major(minor=GOOD_MINOR.replace('"01"', '"101"')),
         "category E01101: code: String should match"),
        ('version = "v1"\n' + major(minor=GOOD_MINOR.replace("= 4", "= 0")),
         "category E0101: handle_hours: Input should be greater than 0"),
        ('version = "v1"\n' + major(minor=GOOD_MINOR.replace('"01"', "1")),
         "code: Input should be a valid string"),
        ('version = "v1"\n' + major(minor=GOOD_MINOR.replace(" }", ', urgnet = true }')),
         "urgnet: Extra inputs are not permitted"),
        ('version = "v1"\n' + major(minor=f"{GOOD_MINOR}, {GOOD_MINOR}"),
         "category E0101 appears twice"),
        ('version = "v1"\n' + major() + major(), "major category E01 appears twice"),
        ('version = "v1"\n' + major(minor=""), "minor: List should have at least 1 item"),
        ('version = "v1"\nmajor = [', "cannot read the categories file"),
    ],
)
def test_bad_files_rejected(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_categories(path)
    assert problem in str(err.value) and str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the categories file"):
        load_categories(tmp_path / "missing.toml")

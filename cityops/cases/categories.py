"""The case-category catalogue (``cityops/data/case_categories.toml``; docs/cases.md, "Categories").

Codes are two-level as in GB/T 30428.2 / CJ/T 315: the type letter (C component, E event), the
major category's two digits and the minor category's two digits, e.g. ``E0401``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_TWO_DIGITS = r"^[0-9]{2}$"
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Category:
    """A minor category: what it is, its handling time limit and who handles it."""

    code: str
    type: str
    major_name: str
    name: str
    handle_hours: float
    unit: str
    urgent: bool
    public: bool


@dataclass(frozen=True)
class Catalogue:
    """All categories by code."""

    version: str
    categories: dict[str, Category]

    def get(self, code: str) -> Category:
        """The category ``code``; a ValueError naming it when there is no such category."""
        try:
            return self.categories[code]
        except KeyError:
            raise ValueError(
                f"unknown case category {code!r} (catalogue {self.version}); the codes are listed"
                " in the categories file (setting cases.categories_file, by default"
                " cityops/data/case_categories.toml)"
            ) from None

    def public(self) -> list[Category]:
        """Categories citizens may report (Open311 services), by code."""
        return [c for _, c in sorted(self.categories.items()) if c.public]

    def label(self, code: str) -> str:
        """``"E0401 Road waterlogging"``; an unknown code is shown as it is."""
        category = self.categories.get(code)
        return code if category is None else f"{code} {category.name}"


class _Minor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_TWO_DIGITS)
    name: str = Field(min_length=1)
    handle_hours: float = Field(gt=0)
    unit: str = Field(min_length=1)
    urgent: bool = False
    public: bool = False


class _Major(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["C", "E"]
    code: str = Field(pattern=_TWO_DIGITS)
    name: str = Field(min_length=1)
    minor: list[dict[str, object]] = Field(min_length=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    major: list[dict[str, object]] = Field(min_length=1)


def load_categories(path: Path | None = None) -> Catalogue:
    """Load and check the catalogue (``None``: the packaged file); errors name file and entry."""
    source = path if path is not None else files("cityops") / "data" / "case_categories.toml"
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the categories file {source}: {exc}") from None
    top = _check(_File, raw, f"categories file {source}")
    categories: dict[str, Category] = {}
    majors: set[str] = set()
    for number, major_raw in enumerate(top.major, 1):
        where = f"categories file {source}, major category {number}"
        major = _check(_Major, major_raw, f"{where} ({_code(major_raw)})")
        prefix = major.type + major.code
        if prefix in majors:
            raise ValueError(f"{where}: major category {prefix} appears twice")
        majors.add(prefix)
        for minor_raw in major.minor:
            minor = _check(_Minor, minor_raw, f"{where}, category {prefix}{_code(minor_raw)}")
            code = prefix + minor.code
            if code in categories:
                raise ValueError(f"{where}: category {code} appears twice")
            categories[code] = Category(
                code, major.type, major.name, minor.name, minor.handle_hours, minor.unit,
                minor.urgent, minor.public,
            )
    return Catalogue(top.version, categories)


def _code(raw: dict[str, object]) -> str:
    """The entry's code as written (type letter too, for a major), for error messages."""
    return f"{raw.get('type', '')}{raw.get('code', '??')}"


def _check(model: type[_M], raw: object, where: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"{where}: {problems}") from None

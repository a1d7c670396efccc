"""The needs indicator set (``cityops/data/needs_indicators.toml``; docs/needs.md, "The index").

A versioned file of 7 dimensions and their indicators, each with a plain-language label, the
achievement it is computed from and its deprivation cutoff, plus the identification cutoff k.
Weights come out as exact ``Fraction``s: each dimension's weight split equally over its indicators.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from fractions import Fraction
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_ID = r"^[a-z][a-z0-9_]*$"
SEVERE = Fraction(1, 2)  # c at or above it (and k): high intensity, the global MPI "severe" line
Band = Literal["high", "medium", "low"]
BAND_LABELS: dict[Band, str] = {
    "high": "high (c ≥ 1/2)",
    "medium": "medium (k ≤ c < 1/2)",
    "low": "low (c < k, not identified)",
}


class IndicatorSetError(ValueError):
    """The indicator file cannot be used; the message names the file and the entry."""


def _fraction(value: object) -> Fraction:
    if isinstance(value, (bool, float)):
        raise ValueError(f"{value!r}: write it as a string such as \"1/7\" so it stays exact")
    try:
        return Fraction(str(value).strip()) if not isinstance(value, int) else Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{value!r} is not a fraction such as \"1/7\" or \"0.25\"") from None


class _Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID)
    label: str = Field(min_length=3)
    achievement: str = Field(min_length=3)
    deprived_when: Literal["below", "above", "yes"]
    cutoff: float | None = None


class _Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID)
    label: str = Field(min_length=3)
    weight: str
    indicators: list[_Indicator] = Field(min_length=1)

    @field_validator("weight")
    @classmethod
    def _weight(cls, v: str) -> str:
        if _fraction(v) <= 0:
            raise ValueError("must be positive")
        return v


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1)
    k: str
    settings: dict[str, float] = Field(default_factory=dict)
    dimensions: list[_Dimension] = Field(min_length=1)

    @field_validator("k")
    @classmethod
    def _k(cls, v: str) -> str:
        k = _fraction(v)
        if not (0 < k <= 1):
            raise ValueError(f"k = {k} is outside (0, 1]")
        return v


@dataclass(frozen=True)
class Indicator:
    id: str
    label: str
    dimension: str
    achievement: str
    deprived_when: str          # "below" / "above" the cutoff, or "yes" (a yes/no fact)
    cutoff: float | None
    weight: Fraction


@dataclass(frozen=True)
class IndicatorSet:
    version: str
    k: Fraction
    settings: dict[str, float]
    indicators: tuple[Indicator, ...]
    dimension_labels: dict[str, str]
    source: str

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.indicators)

    @property
    def labels(self) -> dict[str, str]:
        return {i.id: i.label for i in self.indicators}

    @property
    def weights(self) -> tuple[Fraction, ...]:
        return tuple(i.weight for i in self.indicators)

    @property
    def dimensions(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for i in self.indicators:
            out.setdefault(i.dimension, []).append(i.id)
        return {k: tuple(v) for k, v in out.items()}


def _where(loc: tuple[object, ...], raw: dict) -> str:
    """'dimensions[2] (health).indicators[0] (serious_illness).label' from a pydantic location."""
    parts: list[str] = []
    node: object = raw
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            node = node[item] if item < len(node) else None
            name = node.get("id") if isinstance(node, dict) else None
            parts[-1] = f"{parts[-1]}[{item}]" + (f" ({name})" if name else "")
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def load_indicator_set(path: Path | str | None = None) -> IndicatorSet:
    """Read and validate an indicator file (the packaged default when ``path`` is None)."""
    if path is None:
        resource = files("cityops.data").joinpath("needs_indicators.toml")
        source, text = "cityops/data/needs_indicators.toml", resource.read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise IndicatorSetError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IndicatorSetError(f"{source}: not valid TOML: {exc}") from None
    try:
        data = _File.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(tuple(e['loc']), raw)}: {e['msg']}" for e in exc.errors())
        raise IndicatorSetError(f"{source}: {problems}") from None

    dim_total = sum((_fraction(d.weight) for d in data.dimensions), Fraction(0))
    if dim_total != 1:
        raise IndicatorSetError(f"{source}: dimension weights sum to {dim_total}, not 1")
    seen_dims: set[str] = set()
    seen: set[str] = set()
    indicators: list[Indicator] = []
    for d in data.dimensions:
        if d.id in seen_dims:
            raise IndicatorSetError(f"{source}: dimension {d.id!r} appears twice")
        seen_dims.add(d.id)
        share = _fraction(d.weight) / len(d.indicators)
        for ind in d.indicators:
            if ind.id in seen:
                raise IndicatorSetError(f"{source}: indicator {ind.id!r} (dimension {d.id}) "
                                        "appears twice")
            seen.add(ind.id)
            if ind.deprived_when in ("below", "above") and ind.cutoff is None:
                raise IndicatorSetError(f"{source}: indicator {ind.id!r} (dimension {d.id}) is "
                                        f"deprived {ind.deprived_when} a cutoff but has none")
            indicators.append(Indicator(ind.id, ind.label, d.id, ind.achievement,
                                        ind.deprived_when, ind.cutoff, share))
    return IndicatorSet(version=data.version, k=_fraction(data.k), settings=dict(data.settings),
                        indicators=tuple(indicators),
                        dimension_labels={d.id: d.label for d in data.dimensions}, source=source)


def intensity_band(c: Fraction, k: Fraction) -> Band:
    """A household's intensity band: high (c ≥ 1/2 and identified), medium (identified, c < 1/2)
    or low (c < k, not identified). Exact: c and k are fractions, never floats."""
    if c >= max(k, SEVERE):
        return "high"
    return "medium" if c >= k else "low"

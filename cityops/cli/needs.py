"""``cityops needs af``: the Alkire-Foster index over a CSV matrix, for analysts to check by hand.

The CLI is the composition root, so it alone wires ``models.needs_af`` to files on disk.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import click


@dataclass
class MatrixFile:
    ids: list[str]                      # row ids (line number when there is no id column)
    columns: list[str]                  # indicator columns
    rows: list[list[float]]
    groups: list[str] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)   # (line, reason)


def read_matrix(path: Path, *, id_column: str | None, group_column: str | None,
                achievements: bool) -> MatrixFile:
    """Read the CSV: a header, one row per person/household. Bad rows are set aside with their
    line and reason; the good rows are kept."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise click.ClickException(f"{path}: the file is empty") from None
        if id_column is None and header and header[0].lower() in ("id", "household_id",
                                                                     "person", "person_id"):
            id_column = header[0]
        for name, what in ((id_column, "--id-column"), (group_column, "--group-column")):
            if name is not None and name not in header:
                raise click.ClickException(f"{path}: {what} {name!r} is not in the header "
                                           f"({', '.join(header)})")
        skip = {id_column, group_column}
        cols = [i for i, h in enumerate(header) if h not in skip]
        if not cols:
            raise click.ClickException(f"{path}: no indicator columns in the header")
        out = MatrixFile(ids=[], columns=[header[i] for i in cols], rows=[])
        id_i = header.index(id_column) if id_column else None
        g_i = header.index(group_column) if group_column else None
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                out.bad.append((line, f"{len(row)} fields, the header has {len(header)}"))
                continue
            values: list[float] = []
            reason = None
            for i in cols:
                cell = row[i].strip()
                if achievements:
                    try:
                        v = float(cell)
                    except ValueError:
                        reason = f"{header[i]} = {cell!r} is not a number"
                        break
                    if v != v:
                        reason = f"{header[i]} is missing"
                        break
                else:
                    if cell not in ("0", "1"):
                        reason = f"{header[i]} = {cell!r} is not 0 or 1"
                        break
                    v = float(cell)
                values.append(v)
            if reason is None and g_i is not None and not row[g_i].strip():
                reason = f"{group_column} is empty"
            if reason is not None:
                out.bad.append((line, reason))
                continue
            out.rows.append(values)
            out.ids.append(row[id_i].strip() if id_i is not None else f"line {line}")
            if g_i is not None:
                out.groups.append(row[g_i].strip())
    return out


def _parse_cutoffs(text: str) -> tuple[list[float], list[str]]:
    cutoffs, directions = [], []
    for part in (p.strip() for p in text.split(",")):
        direction = "lower_is_worse"
        if part.startswith(">"):
            direction, part = "higher_is_worse", part[1:].strip()
        elif part.startswith("<"):
            part = part[1:].strip()
        try:
            cutoffs.append(float(part))
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a number (write '13' for deprived below "
                                     "13, '>0.3' for deprived above 0.3)",
                                     param_hint="--cutoffs") from None
        directions.append(direction)
    return cutoffs, directions


def _read_weights_file(path: Path) -> str:
    """A weights file: one weight per line ("1/21") or "column,weight"; '#' starts a comment."""
    parts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            parts.append(line.split(",")[-1].strip())
    return ",".join(parts)


def _fmt(x: Fraction) -> str:
    return f"{float(x):.4f} ({x})" if x.denominator != 1 else str(x)


@click.command("af")
@click.option("--matrix", "matrix_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV: a header, one row per person/household; 0/1 indicator columns "
                   "(or achievements with --cutoffs), optional id and group columns.")
@click.option("--weights", default=None,
              help='Comma-separated weights in column order, e.g. "1/4,1/4,1/4,1/4". Default: '
                   "the default indicator set's weights when the columns are its ids, else equal.")
@click.option("--weights-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help='One weight per line, or "column,weight" lines.')
@click.option("--k", "k_text", default=None, help='Cutoff k, e.g. "1/3" (default: the '
              "indicator set's k when its columns are used, else 1/3).")
@click.option("--cutoffs", default=None,
              help='Achievement cutoffs in column order: "13,12,3,1" (deprived below), '
                   '">0.3" (deprived above).')
@click.option("--id-column", default=None, help="Column with the row id (default: a first "
              "column named id/household_id/person_id).")
@click.option("--group-column", default=None, help="Decompose M0 by this column.")
@click.option("--show", default=20, show_default=True,
              help="Print c for the first N rows (0: none, -1: all).")
def af_command(matrix_file: Path, weights: str | None, weights_file: Path | None,
               k_text: str | None, cutoffs: str | None, id_column: str | None,
               group_column: str | None, show: int) -> None:
    """Alkire-Foster index: c per row, identification, H, A, M0, headcount ratios, contributions."""
    import numpy as np

    from cityops.needs.indicators import load_indicator_set
    from models.needs_af import (
        AFInputError,
        alkire_foster,
        decompose,
        deprivations_from_achievements,
    )

    if weights and weights_file:
        raise click.UsageError("give --weights or --weights-file, not both")
    data = read_matrix(matrix_file, id_column=id_column, group_column=group_column,
                       achievements=cutoffs is not None)
    for line, reason in data.bad:
        click.echo(f"{matrix_file}: line {line}: {reason}; row skipped", err=True)
    if not data.rows:
        raise click.ClickException(f"{matrix_file}: no usable rows ({len(data.bad)} bad)")

    default = load_indicator_set()
    uses_default = tuple(data.columns) == default.ids
    if weights_file is not None:
        weights = _read_weights_file(weights_file)
    w: Any
    if weights:
        w = weights
    elif uses_default:
        w = default.weights
    else:
        w = [Fraction(1, len(data.columns))] * len(data.columns)
    k: Any = k_text if k_text is not None else (default.k if uses_default else Fraction(1, 3))

    try:
        if cutoffs is not None:
            z, dirs = _parse_cutoffs(cutoffs)
            g = deprivations_from_achievements(np.array(data.rows), z, dirs)  # type: ignore[arg-type]
        else:
            g = np.array(data.rows, dtype=np.int8)
        result = alkire_foster(g, w, k, ids=data.columns)
    except AFInputError as exc:
        raise click.ClickException(str(exc)) from None

    click.echo(f"rows: {result.n} used, {len(data.bad)} skipped; indicators: {len(data.columns)}; "
               f"k = {result.k}")
    click.echo("weights: " + ", ".join(f"{c}={wt}" for c, wt in zip(data.columns, result.weights,
                                                                      strict=True)))
    for msg in result.warnings:
        click.echo(f"warning: {msg}")
    limit = result.n if show < 0 else min(show, result.n)
    if limit:
        click.echo("")
        click.echo(f"{'row':<16} {'c':>18}  identified")
        for i in range(limit):
            c = result.c_exact(i)
            mark = "yes" if result.identified[i] else "no"
            click.echo(f"{data.ids[i]:<16} {_fmt(c):>18}  {mark}")
        if limit < result.n:
            click.echo(f"... {result.n - limit} more rows (--show -1 prints all)")
    click.echo("")
    click.echo(f"H  (headcount ratio)  = {_fmt(result.headcount_exact)}")
    click.echo(f"A  (intensity)        = {_fmt(result.intensity_exact)}")
    click.echo(f"M0 (adjusted H = H×A) = {_fmt(result.m0_exact)}")
    click.echo("")
    click.echo(f"{'indicator':<28} {'weight':>8} {'uncensored':>11} {'censored':>9} "
               f"{'contribution %':>15}")
    for j, name in enumerate(result.ids):
        click.echo(f"{name:<28} {result.weights[j]!s:>8} {result.uncensored_ratios[j]:>11.4f} "
                   f"{result.censored_ratios[j]:>9.4f} {result.contributions_pct[j]:>15.2f}")
    if group_column:
        click.echo("")
        click.echo(f"decomposition by {group_column}:")
        click.echo(f"{'group':<20} {'n':>8} {'share':>7} {'H':>7} {'A':>7} {'M0':>7} "
                   f"{'contribution %':>15}")
        for gf in decompose(result, np.array(data.groups)):
            click.echo(f"{gf.group:<20} {gf.n:>8} {gf.population_share:>7.4f} {gf.H:>7.4f} "
                       f"{gf.A:>7.4f} {gf.M0:>7.4f} {gf.contribution_pct:>15.2f}")

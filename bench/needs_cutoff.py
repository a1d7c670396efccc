"""Needs index: what each identification cutoff k does on the synthetic district.

What it does. Generates the synthetic district's needs data in memory (``--size demo`` or
``full``, seed ``--seed``), scores it with the default indicator weights
(``cityops/data/needs_indicators.toml``) and, for each candidate k, prints the Alkire-Foster
aggregates (H, A, M0) and how the identified households compare with the simulation's hidden true
need (recall: share of the truly needy identified; precision: share of the identified truly
needy) and with past approvals. It is the evidence for choosing k with the centre; the index's
default stays the file's k until the centre changes it (docs/needs.md, "Choosing k").

How to run (from the repository root)::

    .venv/bin/python -m bench.needs_cutoff --size full
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np

from cityops.needs.indicators import load_indicator_set
from cityops.simulation.district import DistrictSize, generate_district
from models.needs_af import alkire_foster

CANDIDATES = ("1/7", "1/6", "1/5", "3/14", "1/4", "2/7", "1/3", "5/14", "3/7", "1/2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("demo", "full"), default="full")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    size = DistrictSize.full() if args.size == "full" else DistrictSize()
    data = generate_district(args.seed, size).needs
    assert data is not None
    indicator_set = load_indicator_set()
    approved_ids = {d["household_id"] for d in data.decisions
                    if d["decision"] in ("approved", "visited_helped")}
    approved = np.array([h in approved_ids for h in data.household_ids])
    truth = data.true_need
    print(f"{len(data):,} households (seed {args.seed}); truly in need {truth.mean():.1%}; "
          f"approved in past decisions {approved.mean():.1%}; default k = {indicator_set.k}")
    print(f"{'k':>5} {'H':>7} {'A':>6} {'M0':>7} {'recall':>7} {'precision':>9} "
          f"{'approved identified':>20}")
    for k in CANDIDATES:
        result = alkire_foster(data.indicators, indicator_set.weights, k, ids=indicator_set.ids)
        found = result.identified
        hits = int((found & truth).sum())
        recall = hits / max(int(truth.sum()), 1)
        precision = hits / max(int(found.sum()), 1)
        served = int((found & approved).sum()) / max(int(approved.sum()), 1)
        mark = " <- default" if Fraction(k) == indicator_set.k else ""
        print(f"{k:>5} {float(result.H):7.4f} {float(result.A):6.3f} {float(result.M0):7.4f} "
              f"{recall:7.3f} {precision:9.3f} {served:20.3f}{mark}")
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

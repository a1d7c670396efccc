"""Needs fairness: who is identified, who was approved, who is truly in need, by subgroup.

What it does. Generates the synthetic district's needs data in memory (``--households N``, seed
``--seed``; ``cityops.simulation.district.generate_district``), scores every household with the
index (``models.needs_af``, the default indicator set's weights and k), labels the households with a
past decision (approved / visited_helped = 1, declined = 0; the rest are left out, not negative),
trains ``models.needs_model`` on 75 % of them (seeded split) and prints, for every household and
per subgroup (the head's age band and sex, hukou, a member with a disability), with
``cityops.needs.fairness.fairness_report``:

- households, share identified by the index, share approved in past decisions (of all; of the
  decided);
- share truly in need (the simulation's hidden truth), and the recall of the truly needy by the
  index and by past approvals;
- the model's calibration against past decisions on the held-out decided households (mean
  predicted, observed approval rate, gap, ECE over 10 bins; "too few" under 30 cases), and
  against the true need on every household not used for training.

The page ``/needs/fairness`` shows the same figures without the true need (only a simulation has
it). How to run (from the repository root)::

    .venv/bin/python -m bench.needs_fairness                      # 390,000 households
    .venv/bin/python -m bench.needs_fairness --households 6000 --seed 1
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from cityops.needs.fairness import Calibration, SubgroupFigures, fairness_report, subgroups
from cityops.needs.indicators import load_indicator_set
from cityops.simulation.district import DistrictSize, generate_district
from models.needs_af import alkire_foster
from models.needs_model import evaluate, labels_from_decisions, train

TRAIN_SHARE = 0.75


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cal(c: Calibration | None) -> str:
    if c is None:
        return "— | — | — | — | —"
    if c.too_few:
        return f"{c.n:,} | too few to judge | | |"
    return (f"{c.n:,} | {c.mean_predicted:.3f} | {c.observed:.3f} | {c.gap:+.3f} | "
            f"{c.ece:.3f}")


def _p(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3f}"


def subgroup_table(rows: Sequence[SubgroupFigures]) -> list[str]:
    """A Markdown table of ``fairness_report`` rows (with the true-need columns when given)."""
    head = ("| group | households | identified | approved / all | approved / decided | "
            "held-out decided | mean predicted | approved | gap | ECE |")
    truth = rows[0].truth is not None if rows else False
    if truth:
        head += (" truly needy | recall: index | recall: approved | not trained on | "
                 "mean predicted | true need | gap | ECE |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        name = r.label if r.attribute == "all" else f"{r.attribute}: {r.label}"
        line = (f"| {name} | {r.n:,} | {_p(r.identified)} | {_p(r.approved)} | "
                f"{_p(r.approved_of_decided)} | {_cal(r.calibration)} |")
        if r.truth is not None:
            t = r.truth
            line += (f" {_p(t.truly_needy)} | {_p(t.recall_index)} | {_p(t.recall_approved)} | "
                     f"{_cal(t.calibration)} |")
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=390_000,
                        help="about this many households (rounded up to whole communities)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--split-seed", type=int, default=5)
    args = parser.parse_args()
    if args.households < 300:
        parser.error("--households must be at least 300 (one per community)")

    started = time.perf_counter()
    full = DistrictSize.full()
    size = dataclasses.replace(
        full, households_per_community=math.ceil(args.households / full.communities))
    _say(f"generating {size.households_per_community * size.communities:,} households ...")
    data = generate_district(args.seed, size).needs
    assert data is not None
    n = len(data)
    X = data.indicators.astype(np.int8)

    _say("scoring with the index ...")
    s = load_indicator_set()
    identified = alkire_foster(X, s.weights, s.k, ids=s.ids).identified

    index = {hid: i for i, hid in enumerate(data.household_ids)}
    latest: list[str | None] = [None] * n
    for d in sorted(data.decisions, key=lambda d: d["at"]):
        latest[index[d["household_id"]]] = d["decision"]
    decided, y = labels_from_decisions(latest)
    perm = np.random.default_rng(args.split_seed).permutation(np.flatnonzero(decided))
    n_train = round(TRAIN_SHARE * len(perm))
    train_idx, test_idx = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    not_trained = np.ones(n, bool)
    not_trained[train_idx] = False

    _say(f"training the model on {len(train_idx):,} past decisions ...")
    t_train = time.perf_counter()
    model = train(X[train_idx], y[train_idx], s.ids, seed=args.seed)
    t_train = time.perf_counter() - t_train
    probability = model.predict_proba(X)
    held = evaluate(model, X[test_idx], y[test_idx])["decisions"]

    rows = fairness_report(
        subgroups(data.head_age_band, data.head_sex, data.hukou,
                  X[:, s.ids.index("disability")]),
        identified, decided, decided & (y == 1), probability, true_need=data.true_need,
        calibrate_on=not_trained)
    print(f"households {n:,} (seed {args.seed}); index k = {s.k}; decided {int(decided.sum()):,}"
          f" (train {len(train_idx):,}, held out {len(test_idx):,}); training {t_train:.1f} s")
    print(f"model on held-out decisions: AUC {held['auc']:.3f}, Brier {held['brier']:.4f} (base"
          f" rate {held['brier_base_rate']:.4f})")
    print("calibration against decisions: held-out decided households; against true need: every"
          " household not used for training; approved = latest decision approved or helped")
    print()
    print("\n".join(subgroup_table(rows)))
    print()
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

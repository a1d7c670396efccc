"""Needs model: held-out evaluation and fairness figures of the learned secondary signal.

What it does. Generates the synthetic district's needs data in memory (``--size demo`` or
``full``; ``cityops.simulation.district.generate_district``, seed ``--seed``), labels the households
with a past decision (approved / visited_helped = 1, declined = 0; never decided or still waiting =
left out, NOT negative), splits them 75/25 (seeded), trains ``models.needs_model`` on the 22
indicators only and prints:

- the held-out evaluation against the past decisions (AUC, Brier, 10 calibration bins);
- the same against the hidden true need: on the held-out decided households, and on every
  household not used for training (decided or not), with the recall of the truly needy among the
  top-N by model probability, beside the index's own recall (Alkire-Foster, k = 1/3);
- the share of households in the second-look queue (index and model disagree strongly);
- per subgroup (sex of the head, age band, hukou, disability; ``cityops.needs.fairness``, the
  table of ``bench.needs_fairness``): share identified by the index, share truly in need, share
  approved in past decisions, and the model's calibration (mean predicted vs observed approval on
  held-out decided households; mean predicted vs true need on all non-training households);
- the training time.

Past decisions show who was served, not who was in need: the figures against the true need say by
how much that matters.

How to run (from the repository root)::

    .venv/bin/python -m bench.needs_model --size full
    .venv/bin/python -m bench.needs_model --size demo --seed 1
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.needs_fairness import subgroup_table
from cityops.needs.data import COL, INDICATORS
from cityops.needs.fairness import fairness_report, subgroups
from cityops.needs.indicators import load_indicator_set
from cityops.simulation.district import DistrictSize, generate_district
from models.needs_af import alkire_foster
from models.needs_model import evaluate, labels_from_decisions, second_look, train


def _fmt_cal(table: list[dict[str, float]]) -> str:
    return "  ".join(f"{b['bin']}: n={b['n']} pred {b['mean_predicted']:.3f} obs "
                     f"{b['observed']:.3f}" if b["n"] else f"{b['bin']}: n=0" for b in table)


def _line(name: str, r: dict) -> str:
    return (f"{name}: n={r['n']:,} positives={r['positives']:,} ({r['rate']:.3f}); "
            f"AUC {r['auc']:.3f}; Brier {r['brier']:.4f} (base rate {r['brier_base_rate']:.4f});"
            f" mean predicted {r['mean_predicted']:.3f}; top-{r['top_n']:,} recall "
            f"{r['recall_top_n']:.3f}, precision {r['precision_top_n']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("demo", "full"), default="full")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--split-seed", type=int, default=5)
    args = parser.parse_args()

    t0 = time.perf_counter()
    size = DistrictSize.full() if args.size == "full" else DistrictSize()
    data = generate_district(args.seed, size).needs
    assert data is not None
    t_gen = time.perf_counter() - t0
    n = len(data)
    X = data.indicators.astype(np.int8)

    # latest decision per household (one per household in the synthetic data)
    index = {hid: i for i, hid in enumerate(data.household_ids)}
    latest: list[str | None] = [None] * n
    for d in sorted(data.decisions, key=lambda d: d["at"]):
        latest[index[d["household_id"]]] = d["decision"]
    decided, y = labels_from_decisions(latest)
    approved = decided & (y == 1)

    rng = np.random.default_rng(args.split_seed)
    dec_idx = np.flatnonzero(decided)
    perm = rng.permutation(dec_idx)
    n_train = round(0.75 * len(perm))
    train_idx, test_idx = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    in_train = np.zeros(n, bool)
    in_train[train_idx] = True
    rest = ~in_train

    t1 = time.perf_counter()
    model = train(X[train_idx], y[train_idx], INDICATORS, seed=args.seed)
    t_train = time.perf_counter() - t1

    s = load_indicator_set()
    assert s.ids == INDICATORS
    af = alkire_foster(X, s.weights, s.k, ids=s.ids)
    ident = af.identified

    t2 = time.perf_counter()
    prob = model.predict_proba(X)
    t_pred = time.perf_counter() - t2
    n_needy_rest = int(data.true_need[rest].sum())
    ev = evaluate(model, X[test_idx], y[test_idx], data.true_need[test_idx],
                  X_all=X[rest], true_need_all=data.true_need[rest], top_n=n_needy_rest)
    sl = second_look(ident, prob)

    print(f"district: {args.size}, seed {args.seed}; households {n:,}; decided {len(dec_idx):,} "
          f"(approved or helped {int(approved.sum()):,}); train {len(train_idx):,}, held out "
          f"{len(test_idx):,}; load average {os.getloadavg()[0]:.1f}")
    print(f"generation {t_gen:.1f} s; training (HistGradientBoosting monotone, isotonic, 3-fold) "
          f"{t_train:.1f} s; scoring {n:,} households {t_pred:.2f} s")
    print()
    print("held-out, against past decisions")
    print("  " + _line("decisions", ev["decisions"]))
    print("  calibration  " + _fmt_cal(ev["decisions"]["calibration"]))
    print("against the hidden true need (past decisions show who was served, not who was in need)")
    print("  " + _line("held-out decided", ev["true_need_test"]))
    print("  " + _line("all non-training households", ev["true_need_all"]))
    print("  calibration vs true need (all non-training)  "
          + _fmt_cal(ev["true_need_all"]["calibration"]))
    tn = data.true_need
    print(f"  index (k = {s.k}) on all households: identified {ident.mean():.3f}; recall of the "
          f"truly needy {ident[tn].mean():.3f}, precision {tn[ident].mean():.3f}")
    print(f"  past decisions on all households: approved or helped {approved.mean():.3f}; recall "
          f"of the truly needy {approved[tn].mean():.3f}, precision {tn[approved].mean():.3f}")
    print()
    print(f"second look (high 0.7, low 0.2): {int(sl.flag.sum()):,} households, "
          f"{sl.share:.2%} of all; identified but model < 0.2: {int(sl.index_only.sum()):,}; "
          f"not identified but model > 0.7: {int(sl.model_only.sum()):,}; truly needy among "
          f"them {tn[sl.flag].mean() if sl.flag.any() else float('nan'):.3f}")
    print()
    rows = fairness_report(
        subgroups(data.head_age_band, data.head_sex, data.hukou, X[:, COL["disability"]]),
        ident, decided, approved, prob, true_need=tn, calibrate_on=rest)
    print("by subgroup (cityops.needs.fairness; calibration against decisions on the held-out"
          " decided households, against true need on all non-training households)")
    print("\n".join(subgroup_table(rows)))


if __name__ == "__main__":
    main()

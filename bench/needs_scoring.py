"""Needs index: how long scoring 1,000,000 households with the Alkire-Foster method takes.

What it measures. ``--households`` synthetic households (default 1,000,000), each deprived in each
of the 22 default indicators (cityops/data/needs_indicators.toml) independently with a fixed,
realistic prevalence (e.g. 4 % below the dibao, 12 % below 1.5 times it, 18 % without a family
contact...), drawn with ``--seed`` and not timed, plus a street (13) and a community (300) for
each. Timed, with the default nested weights and k = 1/3: ``models.needs_af.alkire_foster`` (exact
integer scores, identification, H, A, M0, headcount ratios, contributions) and
``decompose`` by street and by community. Issue 5 asks for under 10 s on this machine.

How to run (from the repository root)::

    .venv/bin/python -m bench.needs_scoring
    .venv/bin/python -m bench.needs_scoring --households 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from cityops.needs.indicators import load_indicator_set
from models.needs_af import alkire_foster, decompose

PREVALENCE = {
    "income_below_dibao": 0.04, "income_below_1_5_dibao": 0.12, "assets_below_limit": 0.20,
    "floor_area_low": 0.10, "housing_unsafe": 0.03, "utility_arrears": 0.05,
    "serious_illness": 0.12, "disability": 0.06, "medical_spending_high": 0.08,
    "no_medical_insurance": 0.04,
    "unemployed": 0.07, "long_term_unemployed": 0.03, "no_social_insurance": 0.10,
    "child_not_in_school": 0.01, "education_spending_high": 0.05, "no_adult_9_years": 0.15,
    "elderly_80_no_carer": 0.02, "child_without_parental_care": 0.01,
    "elderly_alone_water_alerts": 0.01,
    "no_emergency_contact": 0.06, "no_community_contact": 0.18, "recent_shock": 0.04,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    s = load_indicator_set()
    rng = np.random.default_rng(args.seed)
    n = args.households
    p = np.array([PREVALENCE[i] for i in s.ids])
    # a shared hardship factor makes deprivations cluster in the same households, as they do
    # (gamma with mean 1 and a long tail: most households have few deprivations, some many)
    frailty = rng.gamma(0.5, 2.0, size=(n, 1))
    g = (rng.random((n, len(s.ids))) < np.minimum(p * frailty, 0.95)).astype(np.int8)
    communities = rng.integers(0, 300, size=n)      # 300 communities in 13 streets
    streets = communities * 13 // 300

    times: dict[str, list[float]] = {"score": [], "by street": [], "by community": [], "all": []}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        r = alkire_foster(g, s.weights, s.k, ids=s.ids)
        t1 = time.perf_counter()
        by_street = decompose(r, streets)
        t2 = time.perf_counter()
        by_community = decompose(r, communities)
        t3 = time.perf_counter()
        times["score"].append(t1 - t0)
        times["by street"].append(t2 - t1)
        times["by community"].append(t3 - t2)
        times["all"].append(t3 - t0)

    load = os.getloadavg()[0]
    print(f"households: {n:,}; indicators: {len(s.ids)} (set {s.version}); k = {s.k}; "
          f"load average {load:.1f}; {args.repeat} runs")
    print(f"H = {r.H:.4f}, A = {r.A:.4f}, M0 = {r.M0:.4f}; streets {len(by_street)}, "
          f"communities {len(by_community)}")
    check = sum(x.population_share * x.M0 for x in by_community)
    print(f"decomposition check: sum of share x M0 by community = {check:.6f}")
    for name, values in times.items():
        print(f"{name:<13} median {statistics.median(values):7.3f} s   slowest "
              f"{max(values):7.3f} s")


if __name__ == "__main__":
    main()

"""The data the needs scoring works on: household profiles (achievements, 22 deprivation
indicators, protected attributes for fairness reporting only), existing assistance, and for the
SYNTHETIC district a hidden true need and simulated past caseworker decisions.

``generate_needs(seed, households)`` is deterministic (same seed and households, same data) and
vectorised with numpy: every household gets a latent hardship ``z`` (higher for elderly people
living alone, single parents, a disabled member, a little for non-local hukou, plus a community
effect), achievements correlated with ``z`` (income, assets, floor area, medical and education
spending, months unemployed), indicators derived from the achievements with the default cutoffs
(or drawn with a probability rising with ``z`` where no achievement stands behind them), and a
hidden true need: ``z`` plus noise above the 92nd percentile.

Past decisions carry SELECTION BIAS on purpose: only households that applied were decided, and
applying is much less likely for non-local hukou and for elderly people living alone; caseworkers
approve mostly by income, with noise. So past decisions show who was served, not who was in
need: among truly needy households the approval rate of non-local ones is far below the local
one (``bias_report``).

``elderly_alone_water_alerts`` here is a synthetic flag; the live indicator (repeated water-use
alerts in the last 30 days) is counted from the alerts table by the scoring side.

``load_needs`` writes it all with COPY (called by ``cityops.simulation.district.load_district``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import psycopg

INDICATOR_SET_VERSION = "2026-11-22"  # version of cityops/data/needs_indicators.toml
INDICATORS: tuple[str, ...] = (
    "income_below_dibao", "income_below_1_5_dibao", "assets_below_limit",
    "floor_area_low", "housing_unsafe", "utility_arrears",
    "serious_illness", "disability", "medical_spending_high", "no_medical_insurance",
    "unemployed", "long_term_unemployed", "no_social_insurance",
    "child_not_in_school", "education_spending_high", "no_adult_9_years",
    "elderly_80_no_carer", "child_without_parental_care", "elderly_alone_water_alerts",
    "no_emergency_contact", "no_community_contact", "recent_shock",
)
COL = {name: i for i, name in enumerate(INDICATORS)}

# Default cutoffs, the same as cityops/data/needs_indicators.toml (version above); a centre's
# own config may change them: the synthetic data are drawn with these.
DIBAO_MONTH = 1420.0                # minimum-living standard, yuan per person and month
ASSET_LIMIT_PER_PERSON = 20_000.0   # financial assets, yuan per person
FLOOR_AREA_MIN = 15.0               # m2 per person
MEDICAL_SHARE_MAX = 0.30            # out-of-pocket medical spending / income
EDUCATION_SHARE_MAX = 0.30          # education spending / income
LONG_UNEMPLOYED_MONTHS = 6

HOUSEHOLD_TYPES = ("elderly_alone", "elderly_couple", "single_parent", "disabled_member",
                   "family", "other")
AGE_BANDS = ("<40", "40-59", "60-79", "80+")
PROGRAMMES = ("dibao", "low_income", "temporary_assistance")
REFERENCE_YEAR = 2026
REFERENCE_DAY = date(2026, 1, 1)   # past decisions fall in the three years before it
TRUE_NEED_SHARE = 0.08


def derived_indicators(income: np.ndarray, assets: np.ndarray, members: np.ndarray,
                       floor_area: np.ndarray, medical_share: np.ndarray,
                       education_share: np.ndarray, months_unemployed: np.ndarray
                       ) -> dict[str, np.ndarray]:
    """The indicators that follow from achievements with the default cutoffs."""
    return {
        "income_below_dibao": income < DIBAO_MONTH,
        "income_below_1_5_dibao": income < 1.5 * DIBAO_MONTH,
        "assets_below_limit": assets < ASSET_LIMIT_PER_PERSON * members,
        "floor_area_low": floor_area < FLOOR_AREA_MIN,
        "medical_spending_high": medical_share > MEDICAL_SHARE_MAX,
        "education_spending_high": education_share > EDUCATION_SHARE_MAX,
        "unemployed": months_unemployed > 0,
        "long_term_unemployed": months_unemployed > LONG_UNEMPLOYED_MONTHS,
    }


@dataclass
class NeedsData:
    """Column arrays, one entry per household (same order as ``household_ids``), plus the
    simulated past decisions and current assistance as row lists."""

    household_ids: list[str]
    household_type: np.ndarray        # str
    head_sex: np.ndarray              # 'F' / 'M'
    head_age_band: np.ndarray         # str
    hukou: np.ndarray                 # 'local' / 'non_local'
    ethnicity: np.ndarray             # 'han' / 'minority'
    income: np.ndarray                # yuan per person and month, 2 decimals
    assets: np.ndarray                # yuan
    floor_area: np.ndarray            # m2 per person
    medical_share: np.ndarray
    education_share: np.ndarray
    months_unemployed: np.ndarray     # int
    indicators: np.ndarray            # bool, shape (n, 22), columns in INDICATORS order
    latent: np.ndarray                # hidden hardship (simulation only)
    true_need: np.ndarray             # bool, hidden ground truth (simulation only)
    applied: np.ndarray               # bool: applied for assistance in the past three years
    decisions: list[dict[str, Any]]   # needs_decisions rows
    assistance: list[dict[str, Any]]  # assistance rows

    def __len__(self) -> int:
        return len(self.household_ids)

    def prevalence(self) -> dict[str, float]:
        """Share of households deprived in each indicator (uncensored headcount ratios)."""
        shares = self.indicators.mean(axis=0)
        return {name: float(shares[i]) for i, name in enumerate(INDICATORS)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate_needs(seed: int, households: Sequence[dict[str, Any]]) -> NeedsData:
    """Needs data for the households of a generated district (dicts with id, community_code,
    members, elderly_alone, birth_year)."""
    return generate_needs_arrays(
        seed,
        [h["id"] for h in households],
        np.fromiter((h["members"] for h in households), np.int64, len(households)),
        np.fromiter((h["elderly_alone"] for h in households), bool, len(households)),
        np.fromiter((h["birth_year"] or 1970 for h in households), np.int64, len(households)),
        np.unique([h["community_code"] for h in households], return_inverse=True)[1],
    )


def generate_needs_arrays(seed: int, ids: list[str], members: np.ndarray,
                          elderly_alone: np.ndarray, birth_year: np.ndarray,
                          community: np.ndarray) -> NeedsData:
    """The vectorised generator (see the module docstring for the model)."""
    rng = np.random.default_rng([seed, 5_0009])
    n = len(ids)
    members = np.asarray(members, np.int64)
    alone = np.asarray(elderly_alone, bool)
    age = REFERENCE_YEAR - np.asarray(birth_year, np.int64)
    u = lambda: rng.random(n)  # noqa: E731
    norm = lambda: rng.standard_normal(n)  # noqa: E731

    # household type
    htype = np.full(n, "other", dtype=object)
    r = u()
    htype[members >= 3] = "family"
    htype[(members >= 2) & (members <= 3) & (r < 0.09)] = "single_parent"
    htype[(members >= 2) & (r >= 0.09) & (r < 0.16)] = "disabled_member"
    htype[(members == 2) & (age >= 60) & (r >= 0.16)] = "elderly_couple"
    htype[alone] = "elderly_alone"
    has_children = np.isin(htype, ("family", "single_parent")) & (age < 60)
    working_age = ~np.isin(htype, ("elderly_alone", "elderly_couple"))

    # protected attributes: fairness reporting only
    head_sex = np.where(u() < np.where(alone, 0.65, 0.48), "F", "M").astype(object)
    head_age_band = np.select([age < 40, age < 60, age < 80], list(AGE_BANDS[:3]),
                              AGE_BANDS[3]).astype(object)
    non_local = u() < np.where(age >= 60, 0.08, 0.30)
    hukou = np.where(non_local, "non_local", "local").astype(object)
    ethnicity = np.where(u() < 0.06, "minority", "han").astype(object)

    # latent hardship
    n_comm = int(community.max()) + 1 if n else 0
    comm_effect = rng.normal(0.0, 0.3, n_comm)[community] if n else np.zeros(0)
    shift = np.select(
        [htype == "elderly_alone", htype == "single_parent", htype == "disabled_member",
         htype == "elderly_couple"], [0.6, 0.5, 0.8, 0.2], 0.0)
    z = norm() + shift + 0.2 * non_local + comm_effect

    # achievements
    income = np.round(np.exp(np.log(6800) - 0.6 * z + 0.45 * norm()), 2)
    assets = np.round(members * np.exp(np.log(100_000) - 0.9 * z + 0.9 * norm()), 2)
    floor_area = np.round(np.exp(np.log(34) - 0.3 * z + 0.4 * norm()), 1)
    illness = u() < _sigmoid(-2.6 + 0.6 * z + 0.9 * (age >= 60))
    disability = (htype == "disabled_member") | (u() < _sigmoid(-4.0 + 0.5 * z))
    medical_share = np.clip(0.04 + 0.18 * illness + 0.10 * disability + 0.03 * z
                            + 0.06 * norm(), 0, 3).round(3)
    education_share = np.where(has_children, np.clip(0.10 + 0.04 * z + 0.09 * norm(), 0, 3),
                               0.0).round(3)
    unemployed = working_age & (u() < _sigmoid(-2.8 + 0.8 * z))
    months_unemployed = np.where(unemployed, 1 + rng.geometric(0.12, n), 0).clip(0, 120)

    ind = np.zeros((n, len(INDICATORS)), dtype=bool)
    for name, values in derived_indicators(income, assets, members, floor_area, medical_share,
                                           education_share, months_unemployed).items():
        ind[:, COL[name]] = values
    drawn = {
        "housing_unsafe": _sigmoid(-3.8 + 0.8 * z),
        "utility_arrears": _sigmoid(-3.6 + 0.9 * z),
        "no_medical_insurance": _sigmoid(-4.0 + 0.5 * z + 1.2 * non_local),
        "no_social_insurance": np.where(working_age, _sigmoid(-3.0 + 0.6 * z + 1.3 * non_local),
                                        0.0),
        "child_not_in_school": np.where(has_children, _sigmoid(-5.0 + 0.9 * z), 0.0),
        "no_adult_9_years": _sigmoid(-2.8 + 0.6 * z + 1.0 * (age >= 60)),
        "elderly_80_no_carer": np.select([alone & (age >= 80), (age >= 80)], [0.55, 0.15], 0.0),
        "child_without_parental_care": np.where(
            has_children, _sigmoid(-5.0 + 0.8 * z + 1.0 * (htype == "single_parent")), 0.0),
        "elderly_alone_water_alerts": np.where(alone, _sigmoid(-2.6 + 0.7 * z), 0.0),
        "no_emergency_contact": _sigmoid(-3.4 + 0.6 * z + 1.2 * alone),
        "no_community_contact": _sigmoid(-2.0 + 0.3 * z + 0.9 * non_local),
        "recent_shock": _sigmoid(-3.4 + 0.5 * z),
    }
    for name, p in drawn.items():
        ind[:, COL[name]] = u() < p
    ind[:, COL["serious_illness"]] = illness
    ind[:, COL["disability"]] = disability

    # hidden true need: latent plus noise, the top TRUE_NEED_SHARE
    need_score = z + 0.5 * norm()
    true_need = need_score > (np.quantile(need_score, 1 - TRUE_NEED_SHARE) if n else 0.0)

    # past decisions, with selection bias: who applies
    applied = u() < _sigmoid(-3.6 + 1.3 * z - 1.6 * non_local - 1.3 * alone)
    proactive = ~applied & alone & (u() < 0.01)   # a grid worker's visit found them
    # caseworkers approve mostly by income, with noise
    view = (-3.0 * (np.log(income) - np.log(1.5 * DIBAO_MONTH)) + 0.15 * ind.sum(axis=1)
            + 0.6 * norm())
    approved = applied & (view > 0)
    pending = applied & (u() < 0.04)
    days_ago = rng.integers(1, 3 * 365, n)
    caseworker = rng.integers(1, 25, n)
    decisions: list[dict[str, Any]] = []
    assistance: list[dict[str, Any]] = []
    for i in np.flatnonzero(applied | proactive):
        at = REFERENCE_DAY - timedelta(days=int(days_ago[i]))
        inc = float(income[i])
        row = {"household_id": ids[i], "at": at, "by": f"caseworker-{int(caseworker[i]):02d}"}
        if proactive[i]:
            decisions.append({**row, "decision": "visited_helped", "programme": "care_visit",
                              "reason": "found on a grid worker's visit; care visits arranged"})
        elif pending[i]:
            decisions.append({**row, "decision": "visit_scheduled", "programme": None,
                              "reason": "application received; home visit to check income"})
        elif approved[i]:
            programme = ("dibao" if inc < DIBAO_MONTH else
                         "low_income" if inc < 1.5 * DIBAO_MONTH else "temporary_assistance")
            decisions.append({**row, "decision": "approved", "programme": programme,
                              "reason": f"per-capita income {inc:.0f} yuan/month checked;"
                                        f" {programme.replace('_', ' ')} granted"})
            if programme != "temporary_assistance":
                assistance.append({"household_id": ids[i], "programme": programme,
                                   "since": at})
        else:
            decisions.append({**row, "decision": "declined", "programme": None,
                              "reason": f"per-capita income {inc:.0f} yuan/month above the"
                                        " low-income line"})
    # old-age allowance: most local residents aged 65+ (some 80+ never claimed it)
    allowance = (~non_local) & (age >= 65) & (u() < np.where(age >= 80, 0.85, 0.9))
    since_year = np.maximum(np.asarray(birth_year) + 65, 2010)
    for i in np.flatnonzero(allowance):
        assistance.append({"household_id": ids[i], "programme": "old_age_allowance",
                           "since": date(int(since_year[i]), 1, 1)})

    return NeedsData(
        household_ids=list(ids), household_type=htype, head_sex=head_sex,
        head_age_band=head_age_band, hukou=hukou, ethnicity=ethnicity, income=income,
        assets=assets, floor_area=floor_area, medical_share=medical_share,
        education_share=education_share, months_unemployed=months_unemployed, indicators=ind,
        latent=z, true_need=true_need, applied=applied, decisions=decisions,
        assistance=assistance,
    )


def bias_report(data: NeedsData) -> dict[str, dict[str, float]]:
    """Among truly needy households, per hukou and for elderly living alone: the share that
    applied and the share approved. Past decisions show who was served, not who was in need."""
    approved = np.zeros(len(data), bool)
    index = {hid: i for i, hid in enumerate(data.household_ids)}
    for d in data.decisions:
        if d["decision"] in ("approved", "visited_helped"):
            approved[index[d["household_id"]]] = True
    groups = {
        "local": data.hukou == "local", "non_local": data.hukou == "non_local",
        "elderly_alone": data.household_type == "elderly_alone",
        "not_elderly_alone": data.household_type != "elderly_alone",
    }
    out = {}
    for name, mask in groups.items():
        needy = mask & data.true_need
        k = max(int(needy.sum()), 1)
        out[name] = {"needy": float(needy.sum()),
                     "applied": float(data.applied[needy].sum() / k),
                     "approved": float(approved[needy].sum() / k)}
    return out


def _indicator_literal(rows: np.ndarray) -> list[str]:
    """PostgreSQL array literals ('{t,f,...}') for boolean rows, fast."""
    chars = np.where(rows, "t", "f")
    return ["{" + ",".join(r) + "}" for r in chars.tolist()]


def load_needs(cur: psycopg.Cursor[Any], data: NeedsData) -> None:
    """COPY the profiles, the hidden truth, past decisions and assistance (same transaction as
    the district)."""
    lits = _indicator_literal(data.indicators)
    with cur.copy(
        "COPY household_profiles (household_id, household_type, head_sex, head_age_band, hukou,"
        " ethnicity, income_per_capita_month, financial_assets, floor_area_per_person,"
        " medical_spending_share, education_spending_share, months_unemployed, indicators,"
        " indicator_set_version, source) FROM STDIN"
    ) as copy:
        cols = zip(data.household_ids, data.household_type, data.head_sex, data.head_age_band,
                   data.hukou, data.ethnicity, data.income.tolist(), data.assets.tolist(),
                   data.floor_area.tolist(), data.medical_share.tolist(),
                   data.education_share.tolist(), data.months_unemployed.tolist(), lits,
                   strict=True)
        copy.write("".join(
            "\t".join((h, t, s, a, k, e, f"{i:.2f}", f"{f:.2f}", repr(fa), repr(m), repr(ed),
                       str(mu), lit, INDICATOR_SET_VERSION, "synthetic")) + "\n"
            for h, t, s, a, k, e, i, f, fa, m, ed, mu, lit in cols))
    with cur.copy("COPY needs_true (household_id, in_need) FROM STDIN") as copy:
        copy.write("".join(f"{h}\t{'t' if v else 'f'}\n"
                           for h, v in zip(data.household_ids, data.true_need.tolist(),
                                           strict=True)))
    with cur.copy("COPY needs_decisions (household_id, at, by, decision, reason, programme)"
                  " FROM STDIN") as copy:
        for d in data.decisions:
            copy.write_row((d["household_id"], d["at"], d["by"], d["decision"], d["reason"],
                            d["programme"]))
    with cur.copy("COPY assistance (household_id, programme, since) FROM STDIN") as copy:
        for a in data.assistance:
            copy.write_row((a["household_id"], a["programme"], a["since"]))

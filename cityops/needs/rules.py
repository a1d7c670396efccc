"""Policy finds people: versioned, deterministic rules that open review tasks (issue 5).

The rules are separate from the scores (the Alkire-Foster index, the model): each is a plain
condition a caseworker can read, written as ONE set-based SQL query over ``households``,
``household_profiles``, ``assistance`` and the live ``alerts``. ``run_rules`` inserts one open
``review_tasks`` row per household and rule version, with ``data`` = the values that fired it, and
ON CONFLICT DO NOTHING on the open-task unique index, so running it again creates nothing new.
Bumping a rule's ``version`` opens new tasks; the old ones keep their version.

Thresholds come from the indicator set's settings (``load_indicator_set``): dibao, the spending
shares, the water-alert count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from cityops.needs.indicators import IndicatorSet, load_indicator_set

WATER_ALERT_KINDS = ("water_silence", "water_running", "water_decline")

# what each household already receives, as a sorted JSON array (one bulk aggregate)
_ASSISTANCE = """
    SELECT household_id, jsonb_agg(programme ORDER BY programme) AS programmes
    FROM assistance GROUP BY household_id
"""


@dataclass(frozen=True)
class Rule:
    id: str
    version: str
    title: str
    explanation: str       # what a caseworker reads on the task
    sql: str               # SELECT household_id, data (jsonb) ... with the named parameters below


@dataclass(frozen=True)
class RuleCount:
    rule_id: str
    version: str
    title: str
    matched: int           # households meeting the rule now
    created: int           # new open tasks
    already_known: int     # households with an open task of this rule version, or one staff
                           # decided on the same facts (data): not asked again


@dataclass(frozen=True)
class RunSummary:
    at: datetime
    counts: tuple[RuleCount, ...]

    def by_rule(self) -> dict[str, RuleCount]:
        return {c.rule_id: c for c in self.counts}


OLD_AGE_ALLOWANCE = Rule(
    id="old_age_allowance",
    version="1",
    title="Aged 80 or over without the old-age allowance",
    explanation=(
        "The head of the household is 80 or older and the household does not receive the "
        "old-age allowance. Check the age and help them apply. Age is the current year minus "
        "the head's birth year (it may be one year high before the birthday); when the birth "
        "year is unknown, the head's age band 80+ from the needs profile is used. Only the "
        "head's age is recorded, so other members aged 80+ are not found by this rule."),
    sql=f"""
        SELECT h.id AS household_id,
               jsonb_build_object(
                   'birth_year', h.birth_year,
                   'age', CASE WHEN h.birth_year IS NOT NULL
                               THEN %(year)s - h.birth_year END,
                   'age_source', CASE WHEN h.birth_year IS NOT NULL THEN 'birth_year of the head'
                                      ELSE 'head_age_band 80+' END,
                   'assistance', COALESCE(a.programmes, '[]'::jsonb)) AS data
        FROM households h
        LEFT JOIN household_profiles p ON p.household_id = h.id
        LEFT JOIN ({_ASSISTANCE}) a ON a.household_id = h.id
        WHERE (CASE WHEN h.birth_year IS NOT NULL THEN %(year)s - h.birth_year >= 80
                    ELSE p.head_age_band = '80+' END)
          AND NOT COALESCE(a.programmes ? 'old_age_allowance', false)
    """,
)

LOW_INCOME_EDGE = Rule(
    id="low_income_edge",
    version="1",
    title="Low income (under 1.5 times the minimum living standard) and no assistance",
    explanation=(
        "Income per person is below 1.5 times the local minimum living standard (dibao) and the "
        "household receives no assistance of any kind. It may qualify for low-income or dibao "
        "support: check the income and invite an application."),
    sql="""
        SELECT p.household_id,
               jsonb_build_object(
                   'income_per_capita', p.income_per_capita_month,
                   'limit', %(income_limit)s::numeric,
                   'dibao', %(dibao)s::numeric,
                   'assistance', '[]'::jsonb) AS data
        FROM household_profiles p
        WHERE p.income_per_capita_month < %(income_limit)s::numeric
          AND NOT EXISTS (SELECT 1 FROM assistance a WHERE a.household_id = p.household_id)
    """,
)

EXPENDITURE_HARDSHIP = Rule(
    id="expenditure_hardship",
    version="1",
    title="Medical or education spending above the share of income allowed",
    explanation=(
        "Out-of-pocket medical spending or education spending is above the indicator set's share "
        "of household income (30 % by default). Such households may qualify for "
        "expenditure-type hardship (temporary) assistance whatever their income: check the bills."),
    sql=f"""
        SELECT p.household_id,
               jsonb_build_object(
                   'medical_spending_share', round(p.medical_spending_share::numeric, 4),
                   'education_spending_share', round(p.education_spending_share::numeric, 4),
                   'medical_cutoff', %(medical_share)s::numeric,
                   'education_cutoff', %(education_share)s::numeric,
                   'over', to_jsonb(array_remove(ARRAY[
                       CASE WHEN p.medical_spending_share > %(medical_share)s::real
                            THEN 'medical' END,
                       CASE WHEN p.education_spending_share > %(education_share)s::real
                            THEN 'education' END], NULL)),
                   'assistance', COALESCE(a.programmes, '[]'::jsonb)) AS data
        FROM household_profiles p
        LEFT JOIN ({_ASSISTANCE}) a ON a.household_id = p.household_id
        WHERE p.medical_spending_share > %(medical_share)s::real
           OR p.education_spending_share > %(education_share)s::real
    """,
)

CARE_VISIT = Rule(
    id="care_visit",
    version="1",
    title="Elderly person living alone with repeated water-use alerts",
    explanation=(
        "An elderly person lives alone and their water meter raised repeated alerts (no use, "
        "running, or a falling pattern) in the last 30 days. Arrange a care visit by the grid "
        "worker or the community. The alerts are counted live from the alerts table."),
    sql="""
        SELECT h.id AS household_id,
               jsonb_build_object(
                   'water_alerts_30_days', w.n,
                   'threshold', %(water_alerts)s::int,
                   'alert_ids', w.ids,
                   'kinds', w.kinds) AS data  -- facts only: a closed task stays closed
        FROM households h
        LEFT JOIN household_profiles p ON p.household_id = h.id
        JOIN (SELECT d.household_id, count(*) AS n,
                     jsonb_agg(al.id ORDER BY al.id) AS ids,
                     jsonb_agg(DISTINCT al.kind) AS kinds
              FROM alerts al
              JOIN devices d ON d.id = al.source_id
              WHERE d.household_id IS NOT NULL AND d.kind = 'water_meter'
                AND al.kind = ANY(%(water_kinds)s)
                AND al.last_seen >= %(since)s AND al.first_seen <= %(now)s
              GROUP BY d.household_id) w ON w.household_id = h.id
        WHERE (h.elderly_alone OR p.household_type = 'elderly_alone')
          AND w.n >= %(water_alerts)s::int
    """,
)

ALL: tuple[Rule, ...] = (OLD_AGE_ALLOWANCE, LOW_INCOME_EDGE, EXPENDITURE_HARDSHIP, CARE_VISIT)
BY_ID: dict[str, Rule] = {r.id: r for r in ALL}


def parameters(now: datetime, indicators: IndicatorSet | None = None) -> dict[str, Any]:
    """The rules' named parameters from the indicator set's settings."""
    s = (indicators or load_indicator_set()).settings
    dibao = Decimal(str(s["dibao_cny_per_month"]))
    return {
        "now": now,
        "year": now.year,
        "dibao": dibao,
        "income_limit": dibao * Decimal("1.5"),
        "medical_share": float(s["medical_spending_share"]),
        "education_share": float(s["education_spending_share"]),
        "water_alerts": int(s["water_alerts_30_days"]),
        "water_kinds": list(WATER_ALERT_KINDS),
        "since": now - timedelta(days=30),
    }


def run_rules(conn: psycopg.Connection[Any], now: datetime, rules: Sequence[Rule] = ALL, *,
              indicators: IndicatorSet | None = None) -> RunSummary:
    """Run ``rules`` at ``now``: one open review task per household and rule version (existing
    open tasks are left alone; a task staff closed comes back only when the facts that fire the
    rule changed, or the rule's version). One transaction; returns the counts per rule."""
    params = parameters(now, indicators)
    counts: list[RuleCount] = []
    with conn.transaction():
        for rule in rules:
            row = conn.execute(
                f"""
                WITH matched AS ({rule.sql}),
                ins AS (
                    INSERT INTO review_tasks (household_id, rule_id, rule_version, fired_at, data)
                    SELECT household_id, %(rule_id)s, %(rule_version)s, %(now)s, data
                    FROM matched m
                    -- staff decided this version's task on the same facts: not asked again
                    WHERE NOT EXISTS (
                        SELECT 1 FROM review_tasks t
                        WHERE t.household_id = m.household_id AND t.rule_id = %(rule_id)s
                          AND t.rule_version = %(rule_version)s AND t.status <> 'open'
                          AND t.data = m.data)
                    ON CONFLICT (household_id, rule_id, rule_version) WHERE status = 'open'
                    DO NOTHING
                    RETURNING 1)
                SELECT (SELECT count(*) FROM matched) AS matched,
                       (SELECT count(*) FROM ins) AS created
                """,
                {**params, "rule_id": rule.id, "rule_version": rule.version},
            ).fetchone()
            assert row is not None
            matched, created = _get(row, "matched", 0), _get(row, "created", 1)
            counts.append(RuleCount(rule.id, rule.version, rule.title, matched, created,
                                    matched - created))
    return RunSummary(now, tuple(counts))


def _get(row: Any, key: str, index: int) -> int:
    return int(row[key] if isinstance(row, dict) else row[index])

"""Plain words for the codes of the needs tables, shared by every page, export and task text so a
household reads the same everywhere (the codes are the CHECK values of migration 0009)."""

from __future__ import annotations

HOUSEHOLD_TYPES: dict[str, str] = {
    "elderly_alone": "elderly person living alone",
    "elderly_couple": "elderly couple",
    "single_parent": "single parent with children",
    "disabled_member": "household with a disabled member",
    "family": "family",
    "other": "other",
}
DECISIONS: dict[str, str] = {
    "approved": "approved",
    "declined": "declined",
    "visit_scheduled": "visit scheduled",
    "visited_helped": "visited and helped",
}
# what a caseworker's decision may grant (needs_decisions.programme)
PROGRAMMES: dict[str, str] = {
    "dibao": "minimum living standard (dibao)",
    "low_income": "low-income household support",
    "temporary_assistance": "temporary assistance",
    "old_age_allowance": "old-age allowance",
    "care_visit": "care visits",
}
# what a household may already receive (assistance.programme): also a disability allowance,
# granted elsewhere and never decided here
ASSISTANCE_PROGRAMMES: dict[str, str] = {
    **{code: label for code, label in PROGRAMMES.items() if code != "care_visit"},
    "disability_allowance": "disability allowance",
}

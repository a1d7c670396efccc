"""The case workflow's state machine without a database: who may move a case where, and why not."""

from __future__ import annotations

from typing import Any

import pytest

from cityops.cases.tickets import (
    OPEN_STATES,
    STATES,
    TRANSITIONS,
    VIA_FUNCTION,
    Actor,
    TransitionError,
    allowed_next,
    check_transition,
)

WORKER = Actor("gw1", "grid_worker", "W1")
OTHER_WORKER = Actor("gw2", "grid_worker", "W2")
OPS = Actor("ops1", "operations")
SUPERVISOR = Actor("sup", "supervisor")
HOTLINE = Actor("op7", "hotline")


def ticket(status: str, **facts: Any) -> dict[str, Any]:
    """A case's facts as the state machine reads them."""
    return {"id": 7, "status": status, "worker_id": "W1", "handled_by": None,
            "fixed_on_spot": False, "reported_by": None, "call_type": None,
            "source": "sensor", **facts}


def refused(t: dict[str, Any], to: str, actor: Actor, note: str = "") -> str:
    with pytest.raises(TransitionError) as caught:
        check_transition(t, to, actor, note)
    return str(caught.value)


def test_the_happy_path_from_dispatch_to_close() -> None:
    steps = [("dispatched", "signed_for", WORKER, ""), ("signed_for", "in_progress", WORKER, ""),
             ("in_progress", "handled", WORKER, "pumped out"),
             ("handled", "verified", SUPERVISOR, ""), ("verified", "closed", OPS, "")]
    for status, to, actor, note in steps:
        check_transition(ticket(status), to, actor, note)  # no refusal


def test_only_the_assigned_worker_acts_on_a_case() -> None:
    assert refused(ticket("dispatched"), "signed_for", OTHER_WORKER) == (
        "ticket 7 is not assigned to you")
    check_transition(ticket("dispatched"), "signed_for", OPS, "")  # the centre may sign for


def test_a_note_is_required_where_the_rule_says() -> None:
    for status, to, actor in (("in_progress", "handled", WORKER), ("dispatched", "returned",
                                                                    WORKER),
                              ("handled", "rework", SUPERVISOR), ("reported", "voided", OPS)):
        assert "say what was done or why" in refused(ticket(status), to, actor)
        check_transition(ticket(status), to, actor, "the reason")


def test_the_handler_never_verifies_their_own_case() -> None:
    handled = ticket("handled", handled_by="gw1")
    assert "handled by you" in refused(handled, "verified", WORKER)
    check_transition(handled, "verified", OTHER_WORKER, "")


def test_a_move_from_the_wrong_state_names_what_is_allowed() -> None:
    message = refused(ticket("dispatched"), "handled", WORKER, "done")
    assert message == ("ticket 7 is dispatched; it cannot become handled"
                       " (allowed: returned, signed_for)")


def test_a_role_without_the_move_is_refused() -> None:
    assert refused(ticket("verified"), "closed", WORKER) == (
        "a grid_worker cannot move a ticket to closed")
    assert refused(ticket("registered"), "dispatched", HOTLINE) == (
        "a hotline cannot move a ticket to dispatched")


def test_the_hotline_moves_only_its_own_cases() -> None:
    assert "did not come from the hotline" in refused(ticket("reported", source="citizen"),
                                                      "accepted", HOTLINE)
    check_transition(ticket("reported", source="hotline"), "accepted", HOTLINE, "")


def test_dispatch_needs_a_worker() -> None:
    assert "has no worker yet" in refused(ticket("registered", worker_id=None), "dispatched",
                                          OPS)


def test_closing_at_once_only_when_fixed_on_the_spot_or_a_consultation_answered() -> None:
    fixed = ticket("reported", fixed_on_spot=True, reported_by="gw1", source="patrol")
    check_transition(fixed, "closed", WORKER, "tightened the cover")
    assert "say what was done" in refused(fixed, "closed", WORKER, " ")
    assert "only its reporter" in refused(fixed, "closed", OTHER_WORKER, "done")
    consultation = ticket("reported", call_type="consultation", source="hotline")
    check_transition(consultation, "closed", HOTLINE, "told the caller the opening hours")
    assert "only its reporter" in refused(ticket("reported", source="hotline"), "closed",
                                          HOTLINE, "done")


def test_allowed_next_lists_the_generic_moves_of_a_role() -> None:
    assert allowed_next("dispatched", "grid_worker") == ["returned", "signed_for"]
    assert allowed_next("handled", "supervisor") == ["verified", "rework"]
    assert allowed_next("closed", "operations") == []  # evaluated: by a rating only
    for status in STATES:
        for role in ("operations", "grid_worker", "hotline", "supervisor", "admin"):
            for to in allowed_next(status, role):
                assert to not in VIA_FUNCTION and status in TRANSITIONS[to].froms


def test_final_states_are_not_open() -> None:
    assert set(OPEN_STATES) == set(STATES) - {"voided", "closed", "evaluated"}
    for final in ("voided", "closed", "evaluated"):
        assert all(final not in rule.froms for to, rule in TRANSITIONS.items()
                   if to != "evaluated")

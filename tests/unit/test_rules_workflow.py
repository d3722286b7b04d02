"""The shared workflow rules: the assignment table, the status groups, sharing and pausing."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from leads.workflow import (
    ACCEPTANCES,
    ASSIGNMENT_TRANSITIONS,
    AWAITING_ANSWER,
    ENGAGED,
    OPEN,
    REROUTABLE,
    SLA_PENDING,
    AssignmentStatus,
    IllegalTransition,
    LeadStatus,
    assignment_sources,
    check_assignment_transition,
    provider_paused,
    sharing_refusal,
)

A = AssignmentStatus
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "current, target",
    [("notified", "viewed"), ("notified", "accepted"), ("viewed", "declined"), ("viewed", "withdrawn")],
)
def test_an_assignment_moves_as_the_table_allows(current, target):
    assert check_assignment_transition(current, target) == target


@pytest.mark.parametrize(
    "current, target",
    [("accepted", "declined"), ("expired", "accepted"), ("withdrawn", "viewed"), ("declined", "expired")],
)
def test_an_answered_or_ended_assignment_refuses_any_move_with_a_clear_message(current, target):
    with pytest.raises(IllegalTransition, match=f"An assignment cannot go from '{current}' to '{target}'"):
        check_assignment_transition(current, target)


def test_an_unknown_assignment_status_is_refused():
    with pytest.raises(IllegalTransition):
        check_assignment_transition("notified", "lost")


def test_every_assignment_status_has_a_row_and_the_groups_are_named_subsets():
    assert set(ASSIGNMENT_TRANSITIONS) == set(AssignmentStatus)
    assert AWAITING_ANSWER < ENGAGED
    assert assignment_sources(A.EXPIRED) == ["notified", "viewed"]
    assert assignment_sources(A.WITHDRAWN) == ["notified", "viewed"]


def test_only_the_chosen_clinics_acceptance_can_close_and_it_stays_an_acceptance():
    """A coordinator's move that ends the patient's choice closes the chosen clinic's assignment."""
    assert check_assignment_transition(A.ACCEPTED, A.CLOSED) == A.CLOSED
    assert A.CLOSED in ACCEPTANCES
    with pytest.raises(IllegalTransition):
        check_assignment_transition(A.DECLINED, A.CLOSED)


def test_lead_status_groups_nest_as_the_queue_expects():
    assert SLA_PENDING < OPEN
    assert REROUTABLE < OPEN
    assert LeadStatus.WITHDRAWN not in OPEN


def _lead(status="routed", *, share=True, withdrawn=False, anonymised=False, consent=True):
    record = SimpleNamespace(share_with_providers=share, withdrawn_at=NOW if withdrawn else None)
    return SimpleNamespace(
        status=status, consent=record if consent else None, anonymised_at=NOW if anonymised else None
    )


@pytest.mark.parametrize(
    "lead, why",
    [
        (_lead(withdrawn=True), "withdrawn"),
        (_lead("withdrawn"), "withdrawn"),
        (_lead(share=False), "not agreed to share"),
        (_lead(anonymised=True), "details removed"),
        (_lead("closed_lost"), "closed"),
        (_lead("spam"), "closed"),
    ],
)
def test_a_lead_may_not_be_shared_and_the_reason_says_why(lead, why):
    assert why in sharing_refusal(lead)


@pytest.mark.parametrize("status", ["new", "routed", "contacted", "quoted", "booked", "unroutable"])
def test_a_lead_with_consent_to_share_may_be_shared(status):
    assert sharing_refusal(_lead(status)) is None
    assert sharing_refusal(_lead(status, consent=False)) is None


def test_a_provider_is_paused_while_inactive_or_until_its_pause_ends():
    assert provider_paused(False, None, NOW)
    assert provider_paused(True, NOW + timedelta(seconds=1), NOW)
    assert not provider_paused(True, NOW, NOW)
    assert not provider_paused(True, None, NOW)

"""Lead statuses move only along the workflow's allowed transitions."""

import pytest

from leads.workflow import ALLOWED_TRANSITIONS, IllegalTransition, LeadStatus, check_transition


def test_the_happy_path_from_new_to_booked_is_allowed():
    path = ["new", "routed", "contacted", "quoted", "booked"]
    for current, target in zip(path, path[1:], strict=False):
        assert check_transition(current, target) == LeadStatus(target)


@pytest.mark.parametrize(
    ("current", "target"), [("new", "booked"), ("withdrawn", "new"), ("booked", "routed")]
)
def test_an_illegal_change_is_a_clear_error_listing_what_is_allowed(current, target):
    with pytest.raises(IllegalTransition) as error:
        check_transition(current, target)
    assert f"from '{current}' to '{target}'" in str(error.value)
    assert "Allowed next statuses" in str(error.value)


def test_an_unknown_status_is_refused():
    with pytest.raises(IllegalTransition):
        check_transition("new", "teleported")


def test_every_status_has_an_entry_and_withdrawn_is_final():
    assert set(ALLOWED_TRANSITIONS) == set(LeadStatus)
    assert ALLOWED_TRANSITIONS[LeadStatus.WITHDRAWN] == frozenset()
    for targets in ALLOWED_TRANSITIONS.values():
        assert all(isinstance(target, LeadStatus) for target in targets)

"""Lead statuses and the one table of allowed transitions between them."""

from enum import StrEnum


class LeadStatus(StrEnum):
    NEW = "new"
    NEEDS_REVIEW = "needs_review"
    ROUTED = "routed"
    CONTACTED = "contacted"
    QUOTED = "quoted"
    BOOKED = "booked"
    CLOSED_LOST = "closed_lost"
    UNROUTABLE = "unroutable"
    DUPLICATE = "duplicate"
    SPAM = "spam"
    WITHDRAWN = "withdrawn"


S = LeadStatus
_CLOSING = {S.CLOSED_LOST, S.WITHDRAWN}

ALLOWED_TRANSITIONS: dict[LeadStatus, frozenset[LeadStatus]] = {
    S.NEW: frozenset({S.ROUTED, S.NEEDS_REVIEW, S.UNROUTABLE, S.DUPLICATE, S.SPAM} | _CLOSING),
    S.NEEDS_REVIEW: frozenset({S.ROUTED, S.UNROUTABLE, S.DUPLICATE, S.SPAM} | _CLOSING),
    S.ROUTED: frozenset({S.CONTACTED, S.UNROUTABLE} | _CLOSING),
    S.UNROUTABLE: frozenset({S.ROUTED, S.CONTACTED, S.NEEDS_REVIEW} | _CLOSING),
    S.CONTACTED: frozenset({S.QUOTED, S.ROUTED} | _CLOSING),
    S.QUOTED: frozenset({S.BOOKED, S.CONTACTED} | _CLOSING),
    S.BOOKED: frozenset(_CLOSING),
    # A coordinator who disagrees with the automatic verdict sends the lead back to triage.
    S.DUPLICATE: frozenset({S.NEW} | _CLOSING),
    S.SPAM: frozenset({S.NEW} | _CLOSING),
    # The patient may withdraw at any time, even after the lead was closed.
    S.CLOSED_LOST: frozenset({S.NEW, S.WITHDRAWN}),
    S.WITHDRAWN: frozenset(),
}

# Statuses a coordinator must act on, most urgent first.
ATTENTION_ORDER = (S.UNROUTABLE, S.NEEDS_REVIEW)


class IllegalTransition(ValueError):
    """A status change the workflow does not allow."""

    def __init__(self, current: str, target: str) -> None:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS.get(LeadStatus(current), ()))) or "none"
        super().__init__(
            f"A lead cannot go from '{current}' to '{target}'. Allowed next statuses: {allowed}."
        )
        self.current = current
        self.target = target


def check_transition(current: str, target: str) -> LeadStatus:
    """Return the target status if the move is allowed, else raise IllegalTransition."""
    try:
        source, destination = LeadStatus(current), LeadStatus(target)
    except ValueError:
        raise IllegalTransition(current, target) from None
    if destination not in ALLOWED_TRANSITIONS[source]:
        raise IllegalTransition(current, target)
    return destination

"""The workflow rules every part shares: lead and assignment statuses, the one table of allowed
moves for each, the named status groups, and the rules that read them ("may this lead still be
shared", "is this provider paused"). Pure: no Flask, no database session."""

from datetime import datetime
from enum import StrEnum

from leads.i18n import N_


class LeadStatus(StrEnum):
    NEW = "new"
    NEEDS_REVIEW = "needs_review"
    ROUTED = "routed"
    CONTACTED = "contacted"
    QUOTED = "quoted"
    # The patient chose one clinic's quote; the clinic has not yet confirmed the booking.
    CHOSEN = "chosen"
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
    # "None of these suit me" asks the coordinators for other clinics: the lead tops the queue.
    S.QUOTED: frozenset({S.CHOSEN, S.BOOKED, S.CONTACTED, S.UNROUTABLE} | _CLOSING),
    S.CHOSEN: frozenset({S.BOOKED, S.QUOTED} | _CLOSING),
    S.BOOKED: frozenset(_CLOSING),
    # A coordinator who disagrees with the automatic verdict sends the lead back to triage.
    S.DUPLICATE: frozenset({S.NEW} | _CLOSING),
    S.SPAM: frozenset({S.NEW} | _CLOSING),
    # The patient may withdraw at any time, even after the lead was closed.
    S.CLOSED_LOST: frozenset({S.NEW, S.WITHDRAWN}),
    S.WITHDRAWN: frozenset(),
}

# Status groups: each named once, here, and imported wherever it is needed.
# Statuses a coordinator must act on, most urgent first (they top the queue).
ATTENTION_ORDER = (S.UNROUTABLE, S.NEEDS_REVIEW)
# The SLA clock runs until the lead first leaves these: nobody has taken it in hand yet.
SLA_PENDING = frozenset({S.NEW, S.NEEDS_REVIEW, S.ROUTED, S.UNROUTABLE})
# A move to one of these stops the SLA clock for good: a lead that comes back to SLA_PENDING (the
# patient's "none of these suit me", a reopened request) was taken in hand already.
TAKEN_IN_HAND = frozenset(S) - SLA_PENDING
# Leads still being worked on (the queue's "any open status").
OPEN = frozenset({S.NEW, S.NEEDS_REVIEW, S.ROUTED, S.UNROUTABLE, S.CONTACTED, S.QUOTED, S.CHOSEN})
# Leads a coordinator (or a decline, or an expiry) may send to the next providers not yet tried.
REROUTABLE = frozenset({S.ROUTED, S.UNROUTABLE, S.CONTACTED})
# Leads no provider may see or be told about any more.
NOT_SHAREABLE = frozenset({S.WITHDRAWN, S.CLOSED_LOST, S.SPAM, S.DUPLICATE})
# The patient's choice stands: a lead that leaves these by a coordinator's move ends it.
CHOICE_MADE = frozenset({S.CHOSEN, S.BOOKED})


# A refused move in words, one per table: English in the exception (logs, the command line),
# marked for the catalogs so that a page can show it translated (`IllegalTransition.words`).
ILLEGAL_MOVE = {
    "lead": N_("A lead cannot go from '%(current)s' to '%(target)s'. Allowed next statuses: %(allowed)s."),
    "assignment": N_(
        "An assignment cannot go from '%(current)s' to '%(target)s'. Allowed next statuses: %(allowed)s."
    ),
    "quote": N_("A quote cannot go from '%(current)s' to '%(target)s'. Allowed next statuses: %(allowed)s."),
}


class IllegalTransition(ValueError):
    """A status change the workflow does not allow."""

    def __init__(self, current: str, target: str, *, kind: str = "lead", table=ALLOWED_TRANSITIONS) -> None:
        self.kind = kind  # lead, assignment or quote: whose statuses these are
        self.current = current
        self.target = target
        self.allowed = tuple(sorted(_allowed_from(table, current)))
        super().__init__(self.words(lambda text: text, lambda status: status))

    def words(self, translate, name) -> str:
        """The refusal through `translate` (a gettext), each status in the words `name(status)` gives."""
        allowed = ", ".join(sorted(str(name(status)) for status in self.allowed)) or translate(N_("none"))
        return translate(ILLEGAL_MOVE[self.kind]) % {
            "current": name(self.current),
            "target": name(self.target),
            "allowed": allowed,
        }


def _allowed_from(table: dict, current: str) -> frozenset:
    return next((targets for source, targets in table.items() if source == current), frozenset())


def _check(table: dict, status: type[StrEnum], kind: str, current: str, target: str):
    """The target status if `table` allows the move, else IllegalTransition naming `kind`."""
    try:
        source, destination = status(current), status(target)
    except ValueError:
        raise IllegalTransition(current, target, kind=kind, table=table) from None
    if destination not in table[source]:
        raise IllegalTransition(current, target, kind=kind, table=table)
    return destination


def check_transition(current: str, target: str) -> LeadStatus:
    """Return the target status if the move is allowed, else raise IllegalTransition."""
    return _check(ALLOWED_TRANSITIONS, LeadStatus, "lead", current, target)


class AssignmentStatus(StrEnum):
    NOTIFIED = "notified"
    VIEWED = "viewed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    # The provider did not answer in time: counts against the provider's response rate.
    EXPIRED = "expired"
    # The patient withdrew consent before the provider answered: never counts against the provider.
    WITHDRAWN = "withdrawn"
    # A coordinator closed the lead before the provider answered, or ended the patient's choice of
    # this provider: never counts against the provider (an acceptance stays one).
    CLOSED = "closed"
    # The patient chose another clinic (or none of the quotes): never counts against the provider.
    NOT_CHOSEN = "not_chosen"


A = AssignmentStatus
_UNANSWERED_ENDS = {A.ACCEPTED, A.DECLINED, A.EXPIRED, A.WITHDRAWN, A.CLOSED, A.NOT_CHOSEN}

ASSIGNMENT_TRANSITIONS: dict[AssignmentStatus, frozenset[AssignmentStatus]] = {
    A.NOTIFIED: frozenset({A.VIEWED} | _UNANSWERED_ENDS),
    A.VIEWED: frozenset(_UNANSWERED_ENDS),
    # Closed: the clinic the patient chose, when a coordinator's move ends the choice.
    A.ACCEPTED: frozenset({A.NOT_CHOSEN, A.CLOSED}),
    A.NOT_CHOSEN: frozenset(),
    A.DECLINED: frozenset(),
    A.EXPIRED: frozenset(),
    A.WITHDRAWN: frozenset(),
    A.CLOSED: frozenset(),
}

# Waiting for the provider's answer: reminders, expiry and the provider's buttons apply.
AWAITING_ANSWER = frozenset({A.NOTIFIED, A.VIEWED})
# Still engaged with the lead: waiting for an answer, or accepted.
ENGAGED = AWAITING_ANSWER | {A.ACCEPTED}
# Answers that were an acceptance, including those the patient later did not choose and those whose
# choice a coordinator ended (read with `responded_at`: an assignment ended as not_chosen or closed
# before any answer is no acceptance).
ACCEPTANCES = frozenset({A.ACCEPTED, A.NOT_CHOSEN, A.CLOSED})


def check_assignment_transition(current: str, target: str) -> AssignmentStatus:
    """Return the target status if an assignment may move there, else raise IllegalTransition."""
    return _check(ASSIGNMENT_TRANSITIONS, AssignmentStatus, "assignment", current, target)


def assignment_sources(target: AssignmentStatus) -> list[str]:
    """The statuses an assignment may move to `target` from, for guarded bulk updates."""
    return sorted(source.value for source, targets in ASSIGNMENT_TRANSITIONS.items() if target in targets)


class QuoteStatus(StrEnum):
    LIVE = "live"
    WITHDRAWN = "withdrawn"
    # Its validity ended before the patient chose; a revision by the clinic renews it.
    EXPIRED = "expired"
    CHOSEN = "chosen"
    # The patient chose it, then a coordinator's move took the lead out of chosen or booked (closed
    # it, perhaps to reopen it): the choice is over and a later round may be chosen.
    CHOICE_ENDED = "choice_ended"
    # The patient chose another clinic, or none of the quotes.
    NOT_CHOSEN = "not_chosen"
    # The lead left the patient's decision without a choice: a coordinator moved or closed it, or
    # the patient withdrew consent.
    CLOSED = "closed"


Q = QuoteStatus
QUOTE_TRANSITIONS: dict[QuoteStatus, frozenset[QuoteStatus]] = {
    Q.LIVE: frozenset({Q.WITHDRAWN, Q.EXPIRED, Q.CHOSEN, Q.NOT_CHOSEN, Q.CLOSED}),
    # The clinic may send a quote again after withdrawing it or after it expired.
    Q.WITHDRAWN: frozenset({Q.LIVE, Q.NOT_CHOSEN, Q.CLOSED}),
    Q.EXPIRED: frozenset({Q.LIVE, Q.NOT_CHOSEN, Q.CLOSED}),
    Q.CHOSEN: frozenset({Q.CHOICE_ENDED}),
    Q.CHOICE_ENDED: frozenset(),
    Q.NOT_CHOSEN: frozenset(),
    Q.CLOSED: frozenset(),
}
# Quotes the clinic may still revise or withdraw: the patient has not decided yet.
QUOTE_OPEN = frozenset({Q.LIVE, Q.WITHDRAWN, Q.EXPIRED})
# Quotes the patient chose, whether the choice stands or was ended later: the stats count them chosen.
QUOTE_WAS_CHOSEN = frozenset({Q.CHOSEN, Q.CHOICE_ENDED})


def check_quote_transition(current: str, target: str) -> QuoteStatus:
    """Return the target status if a quote may move there, else raise IllegalTransition."""
    return _check(QUOTE_TRANSITIONS, QuoteStatus, "quote", current, target)


# What `sharing_refusal` says, marked for the catalogs.
WITHDRAWN_REFUSAL = N_("The patient has withdrawn this request, so it is no longer available.")
NOT_AGREED_REFUSAL = N_("The patient has not agreed to share the request with providers.")
ERASED_REFUSAL = N_("This request has been closed and its details removed.")
CLOSED_REFUSAL = N_("This request has been closed, so it is no longer available.")
SHARING_REFUSALS = (WITHDRAWN_REFUSAL, NOT_AGREED_REFUSAL, ERASED_REFUSAL, CLOSED_REFUSAL)


def sharing_refusal(lead) -> str | None:
    """Why no provider may see or be told about `lead` any more, or None when it may be shared.

    The one rule behind routing, escalation, the provider's page and every email to a provider.
    The reason is English, marked for the catalogs: pages translate it where they show it, and a
    lead's history keeps it as a `fixed` note (`leads.notes`), worded so too.
    """
    consent = lead.consent
    if lead.status == S.WITHDRAWN or (consent is not None and consent.withdrawn_at is not None):
        return WITHDRAWN_REFUSAL
    if consent is not None and not consent.share_with_providers:
        return NOT_AGREED_REFUSAL
    if lead.anonymised_at is not None:
        return ERASED_REFUSAL
    if lead.status in NOT_SHAREABLE:
        return CLOSED_REFUSAL
    return None


def provider_paused(active: bool, paused_until: datetime | None, now: datetime) -> bool:
    """A provider gets no leads while deactivated, or until the moment its pause ends."""
    return not active or (paused_until is not None and paused_until > now)

"""The patient's self-service: see their request's status in plain words, withdraw consent,
ask for their data to be erased."""

import logging

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from leads.extensions import db
from leads.messaging import tokens
from leads.messaging.email import email_coordinators
from leads.models import AssignmentStatus, Lead, Quote, same_patient
from leads.notes import Note
from leads.patients.privacy import notify_providers_of_withdrawal
from leads.quotes.service import close_open_quotes
from leads.routing.service import lock_lead, stop_sharing
from leads.timeutil import utcnow
from leads.workflow import ACCEPTANCES, LeadStatus, QuoteStatus

log = logging.getLogger(__name__)

S = LeadStatus
PLAIN_STATUS = {
    S.NEW: (
        _l("We have your request"),
        _l("We are finding the clinics in Denmark that fit your request best."),
    ),
    S.NEEDS_REVIEW: (
        _l("A coordinator is reviewing your request"),
        _l(
            "The treatment you asked about is still investigational, so one of our coordinators checks "
            "every request before any clinic sees it. We will write to you soon."
        ),
    ),
    S.ROUTED: (
        _l("Clinics are looking at your request"),
        _l(
            "We have sent your request to the clinics that fit it best. When one accepts, we email you "
            "and the clinic contacts you directly."
        ),
    ),
    S.UNROUTABLE: (
        _l("A coordinator is looking for a clinic for you"),
        _l(
            "No clinic we work with could take your request straight away. A coordinator is looking at "
            "it personally and will write to you."
        ),
    ),
    S.CONTACTED: (
        _l("A clinic will contact you"),
        _l("A clinic has accepted your request and will contact you directly."),
    ),
    S.QUOTED: (
        _l("You have quotes to compare"),
        _l(
            "Clinics have sent you quotes. Compare them below and take your time: when you are ready, "
            "choose the clinic you want to go ahead with, or tell us that none of them suit you."
        ),
    ),
    S.CHOSEN: (
        _l("You have chosen a clinic"),
        _l("We have told the clinic you chose. They will contact you to plan the next steps."),
    ),
    S.BOOKED: (_l("Your treatment is booked"), _l("Your treatment is booked with the clinic.")),
    S.CLOSED_LOST: (
        _l("Your request is closed"),
        _l("Your request is closed. You are welcome to ask again at any time."),
    ),
    S.DUPLICATE: (
        _l("We already have this request"),
        _l("This request repeats one you sent earlier, so we are handling them together."),
    ),
    S.SPAM: (
        _l("A coordinator is checking your request"),
        _l("A coordinator checks your request by hand before it goes further."),
    ),
    S.WITHDRAWN: (
        _l("You have withdrawn your request"),
        _l("You withdrew your consent. We no longer share your request with any clinic."),
    ),
}
# Unroutable because the patient found none of the quotes suitable (`quotes.decline_all_quotes`):
# clinics did take the request, so "no clinic could take it" would contradict the page below.
NONE_SUITED = (
    _l("A coordinator is looking for other clinics for you"),
    _l(
        "You told us none of the quotes suit you. A coordinator is looking for other clinics and will "
        "write to you."
    ),
)
# Booked by a coordinator's hand from `quoted` (README: manual status changes): the patient chose no
# quote here, and the move closed the open ones, so "booked with the clinic" would contradict them.
BOOKED_WITHOUT_CHOICE = (
    _l("Your treatment is booked"),
    _l(
        "A coordinator has recorded your treatment as booked. It was not booked by choosing a quote on "
        "this page, so the quotes below are closed. If anything is unclear, reply to our email."
    ),
)
# Unroutable after a clinic had taken the request (it accepted, perhaps quoted): a coordinator's
# move, or a re-route that found no other clinic left. Clinics did take it, so not "no clinic could".
LOOKING_FURTHER = (
    _l("A coordinator is looking for other clinics for you"),
    _l("A coordinator is looking at your request personally and will write to you."),
)


class RequestErased(Exception):
    """The link is sound, but the request's personal data was erased (the patient asked, or
    retention anonymised it): its page says so, where a bad link's says it was mistyped."""


def lead_from_token(token: str) -> Lead:
    """The lead a patient link names; tokens.ExpiredToken / InvalidToken, or RequestErased."""
    max_age = current_app.config["PATIENT_LINK_MAX_AGE_DAYS"] * 86400
    lead = db.session.get(Lead, tokens.read_patient_token(token, max_age))
    if lead is None:
        raise tokens.InvalidToken("This link is not valid.")
    if lead.anonymised_at is not None:
        raise RequestErased(lead.id)
    return lead


def plain_status(lead: Lead) -> tuple[str, str]:
    """The lead's status in the patient's words. A repeat says so only when another request
    handled with it was sent from its address (`handled_together`): one linked by a phone number
    alone may repeat another person's, and its sender must not learn that they asked us."""
    if lead.status == S.DUPLICATE and handled_together(lead.id) == [lead.id]:
        return PLAIN_STATUS[S.SPAM]  # a coordinator judges whether it repeats that request
    if lead.status == S.UNROUTABLE:
        return _unroutable_status(lead)
    if booked_without_choice(lead):
        return BOOKED_WITHOUT_CHOICE
    return PLAIN_STATUS[LeadStatus(lead.status)]


def booked_without_choice(lead: Lead) -> bool:
    """Booked while quotes were on the patient's page, none of them chosen there (a coordinator's
    move from `quoted`); a request booked through its chosen quote, or one without quotes, is not."""
    if lead.status != S.BOOKED:
        return False
    statuses = set(db.session.scalars(sa.select(Quote.status).where(Quote.lead_id == lead.id)))
    return bool(statuses) and QuoteStatus.CHOSEN not in statuses


def _unroutable_status(lead: Lead) -> tuple[str, str]:
    """Why an unroutable request waits, as far as the patient took part in it. Told from what
    happened, not from the status reason, which a later re-route that found nobody replaces with
    its own (the coordinators' why, not the patient's)."""
    entered = next((e for e in reversed(lead.events) if e.to_status == S.UNROUTABLE), None)
    # Only "none of these suit me" moves a request to unroutable on the patient's side.
    if entered is not None and entered.actor_type == "patient":
        return NONE_SUITED
    if any(a.responded_at is not None and a.status in ACCEPTANCES for a in lead.assignments):
        return LOOKING_FURTHER
    return PLAIN_STATUS[S.UNROUTABLE]


def withdraw_consent(lead_id: int) -> bool:
    """Stop all sharing of the request and of the requests handled with it (`handled_together`: a
    repeat's page says so): consent withdrawn, open assignments closed, unsent provider emails
    cancelled, clinics and coordinators told. False when every one was already withdrawn."""
    withdrawn = [_withdraw(other) for other in handled_together(lead_id)]  # in id order: locks too
    if not any(withdrawn):
        db.session.rollback()
        return False
    db.session.commit()
    log.info("lead %s: consent withdrawn (%d request(s))", lead_id, sum(withdrawn))
    return True


def handled_together(lead_id: int) -> list[int]:
    """The request and those handled with it, in id order: of the first request of its duplicate
    chain and every repeat linked to it, at any distance, those sent from the same email address.

    The patient's link proves only that they read that address's mail. Intake also marks a request
    a repeat by its phone number alone, and a number can be shared (a household, a facilitator) or
    known to someone else: such a request's link must not withdraw another person's request."""
    lead = db.session.get(Lead, lead_id)
    root = lead.original
    chain, new = {root.id}, [root.id]
    while new:
        new = db.session.scalars(
            sa.select(Lead.id).where(Lead.duplicate_of_id.in_(new), Lead.id.not_in(list(chain)))
        ).all()
        chain.update(new)
    same_address = db.session.scalars(
        sa.select(Lead.id).where(Lead.id.in_(chain), same_patient(lead.email, None))
    ).all()
    return sorted({lead.id, *same_address})


def _withdraw(lead_id: int) -> bool:
    lead = lock_lead(lead_id)
    if lead.status == LeadStatus.WITHDRAWN:
        return False
    now = utcnow()
    if lead.consent is not None:
        lead.consent.withdrawn_at = now
    lead.change_status(LeadStatus.WITHDRAWN, actor_type="patient", note=Note("consent_withdrawn_status"))
    # Their own end: a patient's withdrawal never counts against a provider's answer record.
    closed, cancelled = stop_sharing(lead, AssignmentStatus.WITHDRAWN, Note("because_withdrawn"))
    told = notify_providers_of_withdrawal(lead)
    close_open_quotes(lead, actor_type="patient", why=Note("because_withdrawn"))
    lead.add_event(
        "consent_withdrawn",
        actor_type="patient",
        note=Note("consent_withdrawn", closed=closed, cancelled=cancelled),
    )
    # The clinics are told by the system itself: the coordinators need not tell them again.
    _tell_coordinators(
        lead,
        "withdrawn",
        _l(
            "The patient withdrew consent. Each clinic that received the request was emailed not to "
            "contact them."
        )
        if told
        else _l("The patient withdrew consent. No clinic had received the request yet."),
    )
    return True


def request_erasure(lead_id: int) -> bool:
    """Record the patient's request to erase their data, for an admin to carry out (or retention's
    daily run once it is due, `privacy.erase_due_requests`). False when it was already requested."""
    lead = db.session.get(Lead, lead_id)
    if lead.erasure_requested_at is not None:
        return False
    lead.erasure_requested_at = utcnow()
    lead.add_event("erasure_requested", actor_type="patient", note=Note("erasure_requested"))
    _tell_coordinators(
        lead, "erasure", _l("The patient asked for their data to be erased. Carry it out within one month.")
    )
    db.session.commit()
    log.info("lead %s: erasure requested", lead.id)
    return True


def _tell_coordinators(lead: Lead, kind: str, summary) -> None:
    email_coordinators(
        lead,
        template="coordinator_patient_request",
        idempotency_key=f"patient-{kind}:{lead.id}",
        summary=summary,
    )

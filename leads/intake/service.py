"""Storing a quote request: spam verdict, duplicate link, then ONE transaction holding the Lead,
its Consent, its first LeadEvent, the routing task and the patient's confirmation email."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from leads import consent
from leads.extensions import db, look_ups_first, refuse_if_read_only
from leads.i18n import patient_language
from leads.intake.spam import spam_reasons
from leads.messaging import outbox
from leads.messaging.email import queue_email
from leads.messaging.urls import patient_link
from leads.models import Condition, Consent, Lead, LeadEvent, Treatment
from leads.models.catalog import treatment_condition
from leads.models.lead import email_key, event_values, new_reference, same_email, status_change
from leads.notes import Note
from leads.timeutil import utcnow
from leads.workflow import LeadStatus, sharing_refusal

log = logging.getLogger(__name__)

CONFIRMATION_TEMPLATE = "patient_confirmation"
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


@dataclass(frozen=True)
class QuoteRequest:
    """A validated quote form, ready to store."""

    full_name: str
    email: str
    phone: str  # E.164
    country: str  # ISO 3166 alpha-2
    preferred_language: str  # ISO 639-1
    treatment: str  # slug
    condition: str  # slug
    details: str
    timeframe: str
    budget: str
    contact_preference: str
    consent_version: str
    consent_language: str
    submission_key: str
    honeypot: str = ""
    utm: dict[str, str | None] = field(default_factory=dict)
    referrer: str | None = None


@dataclass(frozen=True)
class IntakeResult:
    lead_id: int
    reference: str
    status: str
    confirmation_queued: bool
    needs_review: bool  # a coordinator looks at the request before any clinic does
    replayed: bool = False  # the same form was sent again; nothing new was stored


class IntakeRejected(Exception):
    """The request cannot be stored as sent; `message` is for the patient, next to `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


FORM_ALREADY_USED = _l(
    "This form page was already used to send a request, and we have received that request. These "
    "answers are different from it, so they have not been saved yet. Your answers are still here: "
    "please check them and press Send my request again."
)


class FormAlreadyUsed(Exception):
    """The form's one-time key already stored a request with other answers: nothing is stored for
    this one, which is to be sent again with a fresh form token; `message` is for the patient."""

    def __init__(self) -> None:
        super().__init__("the form's key already stored a request with other answers")
        self.message = FORM_ALREADY_USED


def _run(statement: sa.Select, **parameters):
    """The first column of the first row of one of the look-ups below, in the session's transaction.

    They are built once (bound parameters) and run on the session's connection: the form's
    look-ups then cost a fifth of what building and running each as an ORM query does.
    """
    return db.session.connection().execute(statement, parameters).scalar()


_lead = Lead.__table__
_treatment, _condition = Treatment.__table__, Condition.__table__
# Requests a new one is never a repeat of: a patient who withdrew, or whose request a coordinator
# closed, may ask again.
NOT_ORIGINALS = (LeadStatus.SPAM, LeadStatus.WITHDRAWN, LeadStatus.CLOSED_LOST)
# The latest request a new one repeats (same email in any case, through the index of email keys,
# or same phone) since `since`, for the same treatment (the look-up's, correlated): a patient asking
# about another treatment, or a carer asking for someone else's, is a new request to route.
_EARLIER = (
    sa.select(_lead.c.id)
    .where(
        _lead.c.created_at >= sa.bindparam("since"),
        _lead.c.anonymised_at.is_(None),
        _lead.c.status.not_in([s.value for s in NOT_ORIGINALS]),
        sa.or_(same_email(sa.bindparam("email_key")), _lead.c.phone == sa.bindparam("phone")),
        # "+ 0" keeps the planner on the email and phone indexes: a treatment has many leads.
        _lead.c.treatment_id + 0 == _treatment.c.id,
    )
    .order_by(_lead.c.created_at.desc(), _lead.c.id.desc())
    .limit(1)
)
_BY_KEY = sa.select(_lead.c.id).where(_lead.c.submission_key == sa.bindparam("key"))
_BY_REFERENCE = sa.select(_lead.c.id).where(_lead.c.reference == sa.bindparam("reference"))
# The form's look-ups in one statement (one round trip): the treatment and condition it names, if
# both are on offer, and the earlier request it repeats.
_LOOK_UPS = (
    sa.select(_treatment.c.id, _condition.c.id, _treatment.c.requires_review, _EARLIER.scalar_subquery())
    .select_from(
        _treatment.join(treatment_condition, treatment_condition.c.treatment_id == _treatment.c.id).join(
            _condition, treatment_condition.c.condition_id == _condition.c.id
        )
    )
    .where(_treatment.c.slug == sa.bindparam("treatment"), _treatment.c.active.is_(True))
    .where(_condition.c.slug == sa.bindparam("condition"), _condition.c.active.is_(True))
)
_TREATMENT_OFFERED = sa.select(_treatment.c.id).where(
    _treatment.c.slug == sa.bindparam("treatment"), _treatment.c.active.is_(True)
)


def confirmation_context(*, lead_id: int, reference: str, preferred_language: str | None) -> dict:
    """What the patient confirmation email shows: the reference, what happens next and the link.

    Nothing the patient typed and nothing about their health: the address was never verified, so a
    typo would send it to a stranger, and the form must not send chosen text from our domain. The
    details are behind the self-service link.
    """
    config = current_app.config
    return {
        "reference": reference,
        "coordinator_email": config["COORDINATOR_EMAIL"],
        "sla_hours": config["LEAD_SLA_HOURS"],
        "self_service_url": patient_link(lead_id, patient_language(preferred_language)),
    }


# A new reference is taken on trust: the unique constraint catches the rare one already in use
# (about one in 700 at a million leads) and the request is written again under another.
REFERENCE_TRIES = 10


def _reference_taken(reference: str) -> bool:
    return _run(_BY_REFERENCE, reference=reference) is not None


@dataclass(frozen=True)
class _Found:
    treatment_id: int
    condition_id: int
    needs_review: bool  # the treatment's requires_review
    earlier_id: int | None  # the latest request this one repeats


def _look_up(request: QuoteRequest, key: str, *, since: datetime) -> _Found:
    """The active treatment and condition the request names and the latest earlier request of the
    same patient (whose address has the email key `key`, or who gave the same phone) since `since`
    (one query when both are on offer)."""
    found = db.session.connection().execute(
        _LOOK_UPS,
        {
            "treatment": request.treatment,
            "condition": request.condition,
            "email_key": key or None,
            "phone": request.phone or None,
            "since": since,
        },
    )
    row = found.first()
    if row is not None:
        return _Found(*row)
    if _run(_TREATMENT_OFFERED, treatment=request.treatment) is None:
        raise IntakeRejected(
            "treatment", _l("That treatment is no longer offered. Choose another from the list")
        )
    raise IntakeRejected("condition", _l("Choose one of the conditions listed for this treatment"))


def _result(lead: Lead, *, confirmation_queued: bool, replayed: bool = False) -> IntakeResult:
    return IntakeResult(
        lead_id=lead.id,
        reference=lead.reference,
        status=lead.status,
        confirmation_queued=confirmation_queued,
        needs_review=bool(lead.treatment.requires_review),
        replayed=replayed,
    )


# What the patient answered, as the lead stores it: a replay repeats every one of them.
_ANSWERS = (
    "full_name",
    "email",
    "phone",
    "country",
    "preferred_language",
    "details",
    "timeframe",
    "budget",
    "contact_preference",
)


def _same_answers(lead: Lead, request: QuoteRequest) -> bool:
    """Whether `lead` holds exactly the answers of `request` (the same form sent again)."""
    return (lead.treatment.slug, lead.condition.slug) == (request.treatment, request.condition) and all(
        getattr(lead, name) == getattr(request, name) for name in _ANSWERS
    )


def _replayed(request: QuoteRequest) -> IntakeResult | None:
    """The result of the lead a form with this key already stored, if one did with these answers.

    A key names a form page, not a request: a double click or a retry sends the same answers again
    and gets the first lead's result, but a page brought back (Back after the thank-you page) may
    send another request under the old key, such as a carer's for a second person. Only the same
    answers, every one, make the same request; other answers raise FormAlreadyUsed, so they are
    refused with nothing stored rather than swallowed as a replay.
    """
    found = _run(_BY_KEY, key=request.submission_key)
    if found is None:
        return None
    earlier = db.session.get(Lead, found)
    if not _same_answers(earlier, request):
        log.info("the form key of lead %s came back with other answers: refused", earlier.id)
        raise FormAlreadyUsed()
    return _result(earlier, confirmation_queued=earlier.status != LeadStatus.SPAM, replayed=True)


_INSERT_LEAD = Lead.__table__.insert()
_INSERT_CONSENT = Consent.__table__.insert()
_INSERT_EVENTS = LeadEvent.__table__.insert()


def _write_lead(lead: dict, consent_given: dict, events: list[dict]) -> int:
    """Write the new lead, its consent and its first history entries; the lead's id.

    Prepared INSERTs on the session's connection, in its transaction: the intake is the one place
    a lead is made, and the ORM's unit of work for these three rows cost more than the rest of the
    request's writes. The history entries are made by `event_values` and `status_change`, as
    `Lead.add_event` and `Lead.change_status` make theirs.
    """
    refuse_if_read_only()
    connection = db.session.connection()
    lead_id = connection.execute(_INSERT_LEAD, lead).inserted_primary_key[0]
    connection.execute(_INSERT_CONSENT, {**consent_given, "lead_id": lead_id})
    connection.execute(_INSERT_EVENTS, [{**event, "lead_id": lead_id} for event in events])
    return lead_id


def submit_quote(request: QuoteRequest) -> IntakeResult:
    """Store the request and everything that follows from it in one committed transaction.

    The look-ups (the offer, an earlier request) run first, outside the write transaction
    (`look_ups_first`), which then holds only the writes. The form's key and the new reference
    are left to their unique constraints: only a write they refuse looks up why (the same form
    sent again, or a reference already in use, which is tried again under another).
    Raises IntakeRejected when the treatment or condition is no longer offered, FormAlreadyUsed
    when the form's key already stored a request with other answers; database errors propagate
    after nothing has been written.
    """
    config = current_app.config
    consent_text = consent.text_for(request.consent_version, request.consent_language)
    if consent_text is None:
        raise ValueError(f"unknown consent text {request.consent_version!r} in {request.consent_language!r}")
    reasons = spam_reasons(
        full_name=request.full_name,
        details=request.details,
        honeypot=request.honeypot,
        max_links=config["QUOTE_SPAM_MAX_LINKS"],
    )
    now = utcnow()
    window = timedelta(days=config["QUOTE_DUPLICATE_WINDOW_DAYS"])
    key = email_key(request.email)  # once: for the duplicate look-up and the new row
    with look_ups_first():
        try:
            found = _look_up(request, key, since=now - window)
        except IntakeRejected:
            # A form stored before its treatment was withdrawn, sent again: what it stored.
            replayed = _replayed(request)
            if replayed is not None:
                return replayed
            raise
        original = None
        if found.earlier_id is not None and not reasons:
            # Every repeat links to the first request of its chain, while that one is still handled
            # (not withdrawn, closed or erased) and within the window: the window runs from the
            # chain's first request, so a patient who asks again every few weeks is heard again.
            earlier = db.session.get(Lead, found.earlier_id).original
            if sharing_refusal(earlier) is None and earlier.created_at >= now - window:
                original = (earlier.id, earlier.reference)

    status = LeadStatus.NEW
    events = [
        event_values(
            "submitted",
            actor_type="patient",
            to_status=status.value,
            note=Note("submitted", version=consent_text.version),
        )
    ]
    status_reason = duplicate_of_id = None
    if reasons:
        why = Note("spam", reasons=reasons)
        status, event = status_change(status, LeadStatus.SPAM, actor_type="system", note=why)
        events.append(event)
        status_reason = why.stored
    elif original is not None:
        duplicate_of_id, original_reference = original
        said = {"reference": original_reference, "days": window.days}
        status, event = status_change(
            status, LeadStatus.DUPLICATE, actor_type="system", note=Note("duplicate_not_routed", **said)
        )
        events.append(event)
        status_reason = Note("duplicate", **said).stored
    lead_values = {
        "status": status.value,
        "status_reason": status_reason,
        "duplicate_of_id": duplicate_of_id,
        "full_name": request.full_name,
        "email": request.email,
        "email_key": key,
        "phone": request.phone,
        "country": request.country,
        "preferred_language": request.preferred_language,
        "treatment_id": found.treatment_id,
        "condition_id": found.condition_id,
        "details": request.details,
        "timeframe": request.timeframe,
        "budget": request.budget,
        "contact_preference": request.contact_preference,
        "referrer": request.referrer,
        "submission_key": request.submission_key,
        "sla_due_at": now + timedelta(hours=config["LEAD_SLA_HOURS"]),
        "created_at": now,
        **{name: request.utm.get(name) for name in UTM_FIELDS},
    }
    consent_values = {
        "text_version": consent_text.version,
        "text_hash": consent_text.sha256,
        "language": consent_text.language,
        "share_with_providers": True,
        "contact": True,
        "source_form": consent.SOURCE_QUOTE_FORM,
        "given_at": now,
    }
    # No confirmation for suspected spam: its address may be a stranger's.
    confirm = status != LeadStatus.SPAM
    for _ in range(REFERENCE_TRIES):
        reference = new_reference()
        try:
            lead_id = _write_lead({**lead_values, "reference": reference}, consent_values, events)
            to_route = status == LeadStatus.NEW
            confirmation_ids = []
            if confirm:
                confirmation_ids.append(
                    queue_email(
                        template=CONFIRMATION_TEMPLATE,
                        to=request.email,
                        idempotency_key=f"patient-confirmation:{lead_id}",
                        new_key=True,  # it names the lead this transaction makes
                        lead_id=lead_id,
                        reply_to=config["COORDINATOR_EMAIL"],
                        language=patient_language(request.preferred_language),
                        render_later=True,  # by the worker that sends it: the patient waits on this request
                        in_send_task=not to_route,
                        **confirmation_context(
                            lead_id=lead_id,
                            reference=reference,
                            preferred_language=request.preferred_language,
                        ),
                    )
                )
            if to_route:
                # One broker message per form: the routing task hands the confirmation to the
                # email queue before it routes (workers.route_lead).
                outbox.add_task(outbox.ROUTE_LEAD, lead_id=lead_id, email_ids=confirmation_ids)
            db.session.commit()
            break
        except sa.exc.IntegrityError:
            db.session.rollback()
            with look_ups_first():
                # The same form sent again (a double click, or two at once): what it stored.
                # A brought-back page sending other answers under its key: refused.
                replayed = _replayed(request)
                if replayed is not None:
                    return replayed
                if not _reference_taken(reference):
                    raise
    else:
        raise RuntimeError(f"no unused lead reference after {REFERENCE_TRIES} tries")
    result = IntakeResult(
        lead_id=lead_id,
        reference=reference,
        status=status.value,
        confirmation_queued=confirm,
        needs_review=found.needs_review,
    )
    log.info(
        "quote request %s stored as lead %s with status %s", result.reference, result.lead_id, result.status
    )
    return result

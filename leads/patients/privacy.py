"""The patient's rights over their data: export everything we hold (right of access), erase it
(right to erasure), and the retention that anonymises what we no longer need.

Anonymising keeps what statistics need (dates, treatment, condition, country, source, statuses,
provider answers) and removes everything that identifies the patient or repeats their words."""

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import aliased

from leads import consent
from leads.auth import ceiling, device_lock, throttle
from leads.extensions import db, look_ups_first
from leads.messaging.email import (
    cancel_provider_emails,
    email_coordinators,
    provider_email_assignments,
    queue_email,
)
from leads.models import (
    AccessAction,
    AccessLog,
    Assignment,
    EmailMessage,
    EmailStatus,
    ErasureRecord,
    Lead,
    LeadEvent,
    access_detail,
    email_key,
    find_by_reference,
    same_email,
    same_patient,
)
from leads.models.lead import typed_reference
from leads.models.quote import Quote, QuoteRevision
from leads.notes import Note
from leads.quotes.service import move_lead
from leads.routing.notification import provider_language
from leads.routing.service import lock_lead
from leads.timeutil import utcnow
from leads.workflow import OPEN, LeadStatus

log = logging.getLogger(__name__)

# The doors an erasure comes through, as its proof row (ErasureRecord.door) records them.
COMMAND_LINE, STAFF_PAGE, RETENTION = "command_line", "staff_page", "retention"
DEADLINE = "deadline"  # the patient's own request, carried out by retention when it fell due
# What the history and the access log say of an erasure that nobody clicked (`erase_due_requests`).
AT_DEADLINE_NOTE = Note("erased_at_deadline")
AT_DEADLINE_DETAIL = access_detail("door", door=DEADLINE)
PATIENT_EXPORT, ERASURE = AccessAction.PATIENT_EXPORT, AccessAction.ERASURE
# What an erasure leaves of every note in the lead's history, and of its status reason.
ERASED_NOTE = Note("erased")
S = LeadStatus


class PatientNotFound(LookupError):
    """No data is held under that reference or email address; the message says so."""


class PatientRequestsChanged(Exception):
    """The patient's requests are no longer the ones shown before the erasure (or the export) was
    confirmed; `undone` says what did not happen."""

    def __init__(self, leads: list[Lead], shown: set[str], undone: str = "Nothing was erased."):
        self.leads = leads
        now = {lead.reference for lead in leads}
        self.added, self.removed = sorted(now - shown), sorted(shown - now)
        changes = [f"new: {', '.join(self.added)}"] if self.added else []
        changes += [f"no longer held: {', '.join(self.removed)}"] if self.removed else []
        super().__init__(
            f"The patient's requests changed after they were listed ({'; '.join(changes)}). {undone}"
        )


class ExportRefused(ValueError):
    """The requests chosen for an export are not a choice among the patient's linked requests (none,
    or one that is not linked); the message says which, and nothing was exported."""


# How a request is linked to the one (or the address) an export or an erasure names
# (`linked_requests`): sent from that address (`sent_from`), or linked by another request's
# address, a phone number or a duplicate mark, which can be another person's.
SAME_ADDRESS, OTHER_ADDRESS, SAME_PHONE, DUPLICATE_MARK = "address", "other_address", "phone", "duplicate"


@dataclass(frozen=True)
class LinkedRequest:
    lead: Lead
    link: str  # SAME_ADDRESS for the patient's own requests, else how it was found

    @property
    def own(self) -> bool:
        """Sent from the named request's address: the patient's own, as far as we can tell."""
        return self.link == SAME_ADDRESS


class ErasureFailed(Exception):
    """The erasure stopped on an error: nothing was erased; the log names the leads by id."""

    def __init__(self) -> None:
        super().__init__("The erasure stopped on an error, so nothing was erased (the error is logged).")


def erasure_due_at(lead: Lead) -> datetime | None:
    """When the patient's erasure request must be carried out (the legal limit is one month)."""
    if lead.erasure_requested_at is None:
        return None
    return lead.erasure_requested_at + timedelta(days=current_app.config["ERASURE_DUE_DAYS"])


def erasure_due(now: datetime) -> sa.ColumnElement[bool]:
    """Leads whose erasure request is due at `now` (`erasure_due_at` passed) and not carried out."""
    due_requested = now - timedelta(days=current_app.config["ERASURE_DUE_DAYS"])
    return sa.and_(Lead.erasure_requested_at <= due_requested, Lead.anonymised_at.is_(None))


def patient_leads(identifier: str) -> list[Lead]:
    """Every lead of the patient a reference or email address names, oldest first
    (`linked_requests`)."""
    return [request.lead for request in linked_requests(identifier)]


def linked_requests(identifier: str) -> list[LinkedRequest]:
    """Every lead of the patient a reference or email address names, oldest first, each with how
    it is linked: that lead, or the leads with that email, and every lead linked to them
    (`_links`); not the anonymised ones (nothing about the patient is left in them). Those sent
    from the named address (`sent_from`) are the patient's own; the others may be another
    person's, and a person decides."""
    text = identifier.strip()
    if not text:
        raise PatientNotFound(gettext("Give a request reference (such as Q-7K3M9P) or an email address."))
    if "@" in text:
        start = db.session.scalars(sa.select(Lead).where(same_patient(text, None))).all()
    else:
        lead = find_by_reference(text)
        if lead is None:
            raise PatientNotFound(gettext("No request has the reference '%(reference)s'.", reference=text))
        start = [lead]
    own = set(db.session.scalars(sa.select(Lead.id).where(sa.or_(sa.false(), *map(sent_from, start)))))
    requests = [
        LinkedRequest(lead, SAME_ADDRESS if lead.id in own else link)
        for lead, link in _links(start).values()
        if lead.anonymised_at is None
    ]
    if not requests:
        raise PatientNotFound(
            gettext("We hold no personal data under '%(text)s' (it may have been erased already).", text=text)
        )
    return sorted(requests, key=lambda request: (request.lead.created_at, request.lead.id))


def sent_from(lead: Lead) -> sa.ColumnElement[bool]:
    """`lead` and the leads sent from its email address, in any case: what proves a request is
    its patient's own (anyone can send the form with another person's phone number, which makes
    their request a repeat of that person's)."""
    return sa.or_(Lead.id == lead.id, same_patient(lead.email, None))


def own_requests(lead: Lead) -> list[Lead]:
    """The requests an erasure nobody checks may erase for the patient whose link asked from
    `lead`: those sent from its address (`sent_from`) before they asked; none once it is
    anonymised.

    Not those `patient_leads` adds by phone number or duplicate mark, which an admin sees named
    before erasing: the link proves only that its patient reads that address's mail. Nor a
    request sent after the erasure was asked for: the patient asked us for something again, and
    an admin decides."""
    if lead.anonymised_at is not None:
        return []
    asked = lead.erasure_requested_at or utcnow()
    return list(
        db.session.scalars(
            sa.select(Lead)
            .where(
                sent_from(lead),
                # Sent before the patient asked, or with an erasure request of its own.
                sa.or_(Lead.id == lead.id, Lead.created_at <= asked, Lead.erasure_requested_at.is_not(None)),
                Lead.anonymised_at.is_(None),
            )
            .order_by(Lead.created_at, Lead.id)
        )
    )


def _linked_leads(start: list[Lead]) -> list[Lead]:
    """`start` and the leads linked to it (`_links`)."""
    return [lead for lead, _ in _links(start).values()]


def _links(start: list[Lead]) -> dict[int, tuple[Lead, str]]:
    """`start` and the leads linked to it, by id, each with the link that found it: the same email
    (any case) and duplicate links (made by intake from the same email or phone, or by a
    coordinator), either way and at any distance, one query a round until a round finds nothing
    new; and the same phone as a lead of `start`. `start` itself is SAME_ADDRESS, and so is the
    first round's same email; a later round's is OTHER_ADDRESS (another linked request's).

    A phone is followed one step only: a number shared by a household or a facilitator would
    otherwise chain other patients' requests into an erasure that cannot be undone. An anonymised
    lead's duplicate link is followed too: its email and phone are gone, but the link still joins
    two requests of the patient."""
    found = {lead.id: (lead, SAME_ADDRESS) for lead in start}
    keys: set[str] = set()
    new = list(start)
    phones = [same_patient(None, phone) for phone in {lead.phone for lead in start if lead.phone}]
    address_link = SAME_ADDRESS
    while new:
        new_keys = {lead.email_key for lead in new if lead.email_key} - keys
        keys |= new_keys
        by_address = sa.or_(sa.false(), *(same_email(key) for key in new_keys))
        by_phone = sa.or_(sa.false(), *phones)
        by_duplicate = sa.or_(
            Lead.duplicate_of_id.in_([lead.id for lead in new]),
            Lead.id.in_({lead.duplicate_of_id for lead in new} - {None}),
        )
        link = sa.case((by_address, address_link), (by_phone, SAME_PHONE), else_=DUPLICATE_MARK)
        phones, address_link = [], OTHER_ADDRESS
        rows = db.session.execute(
            sa.select(Lead, link).where(
                sa.or_(by_address, by_phone, by_duplicate), Lead.id.not_in(list(found))
            )
        ).all()
        new = [lead for lead, _ in rows]
        found.update((lead.id, (lead, how)) for lead, how in rows)
    return found


def export_patient(
    identifier: str, *, user_id: int | None, chosen: Collection[str], shown: Collection[str] | None = None
) -> dict:
    """Everything held about the requests `chosen` (references) among the patient's
    (`linked_requests`), as one JSON-ready document; logged per lead. Commits.

    ExportRefused, nothing exported, when none is chosen or one is not among them: a request
    linked only by a phone number or a duplicate mark may be another person's, and is exported
    only when a person chose it. `shown`: the references listed to whoever chose;
    PatientRequestsChanged, nothing exported, unless they are still exactly the linked requests."""
    requests = linked_requests(identifier)
    held = {request.lead.reference for request in requests}
    if shown is not None and set(shown) != held:
        raise PatientRequestsChanged([r.lead for r in requests], set(shown), "Nothing was exported.")
    wanted = {typed_reference(reference) or reference.strip() for reference in chosen}
    if not wanted:
        raise ExportRefused(gettext("Choose at least one request to export."))
    if wanted - held:
        raise ExportRefused(
            gettext(
                "Not among the patient's linked requests: %(references)s. Nothing was exported.",
                references=", ".join(sorted(wanted - held)),
            )
        )
    leads = [request.lead for request in requests if request.lead.reference in wanted]
    document = {
        "generated_at": utcnow().isoformat(),
        "controller_contact": current_app.config["COORDINATOR_EMAIL"],
        "requests": [_lead_document(lead) for lead in leads],
    }
    for lead in leads:
        db.session.add(
            AccessLog(user_id=user_id, lead_id=lead.id, action=PATIENT_EXPORT, detail=_door(user_id))
        )
    db.session.commit()
    return document


def _door(user_id: int | None) -> str:
    """The access-log detail of a patient export or erasure: done from a staff page or the command line."""
    return access_detail("door", door=STAFF_PAGE if user_id is not None else COMMAND_LINE)


def _lead_document(lead: Lead) -> dict:
    record = lead.consent
    wording = consent.text_for(record.text_version, record.language) if record else None
    return {
        "reference": lead.reference,
        "status": lead.status,
        "received_at": lead.created_at.isoformat(),
        "full_name": lead.full_name,
        "email": lead.email,
        "phone": lead.phone,
        "country": lead.country,
        "preferred_language": lead.preferred_language,
        "treatment": lead.treatment.name,
        "condition": lead.condition.name,
        "details": lead.details,
        "diagnosis_date": lead.diagnosis_date.isoformat() if lead.diagnosis_date else None,
        "injury_level": lead.injury_level,
        "timeframe": lead.timeframe,
        "budget": lead.budget,
        "contact_preference": lead.contact_preference,
        "source": {
            "utm_source": lead.utm_source,
            "utm_medium": lead.utm_medium,
            "utm_campaign": lead.utm_campaign,
            "utm_term": lead.utm_term,
            "utm_content": lead.utm_content,
            "referrer": lead.referrer,
        },
        "erasure_requested_at": _iso(lead.erasure_requested_at),
        "consent": record
        and {
            "text_version": record.text_version,
            "text_sha256": record.text_hash,
            "language": record.language,
            "text": wording and {"share_with_providers": wording.share, "contact": wording.contact},
            "share_with_providers": record.share_with_providers,
            "contact": record.contact,
            "given_at": record.given_at.isoformat(),
            "withdrawn_at": _iso(record.withdrawn_at),
            "source_form": record.source_form,
        },
        "history": [
            {
                "at": event.created_at.isoformat(),
                "what": event.kind,
                "by": event.actor_type,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "note": event.note,
            }
            for event in lead.events
        ],
        "emails_to_you": [
            {
                "created_at": email.created_at.isoformat(),
                "sent_at": _iso(email.sent_at),
                "status": email.status,
                "subject": email.subject,
                "text": email.body_text,
            }
            for email in db.session.scalars(
                sa.select(EmailMessage).where(EmailMessage.lead_id == lead.id).order_by(EmailMessage.id)
            )
            if email_key(email.to_address) == lead.email_key
        ],
        "shared_with_providers": [
            {
                "provider": a.provider.name,
                "city": a.provider.city,
                "sent_at": a.created_at.isoformat(),
                "opened_at": _iso(a.viewed_at),
                "answered_at": _iso(a.responded_at),
                "status": a.status,
            }
            for a in lead.assignments
        ],
        "quotes": _quotes_document(lead),
    }


def _quotes_document(lead: Lead) -> list[dict]:
    """Every clinic's quote to the patient with all its revisions, oldest first."""
    quotes = db.session.scalars(sa.select(Quote).where(Quote.lead_id == lead.id).order_by(Quote.id))
    return [
        {
            "provider": quote.assignment.provider.name,
            "status": quote.status,
            "sent_at": quote.created_at.isoformat(),
            "chosen_or_closed_at": _iso(quote.decided_at),
            "renewal_requested_at": _iso(quote.renewal_requested_at),
            "booked_at": _iso(quote.booked_at),
            "treatment_date": quote.treatment_date.isoformat() if quote.treatment_date else None,
            "revisions": [
                {
                    "number": revision.number,
                    "sent_at": revision.created_at.isoformat(),
                    "price_from": revision.price_from,
                    "price_to": revision.price_to,
                    "currency": revision.currency,
                    "includes": list(revision.includes),
                    "earliest_start": revision.earliest_start.isoformat(),
                    "valid_until": revision.valid_until.isoformat(),  # the exact end, in UTC
                    "last_valid_day": revision.last_valid_day.isoformat(),  # the Danish day shown
                    "needs_records_review": revision.needs_records,
                    "message": revision.message,
                }
                for revision in quote.revisions
            ],
        }
        for quote in quotes
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def erase_patient(
    identifier: str, *, user_id: int | None, door: str, shown: Collection[str] | None = None
) -> ErasureRecord:
    """Erase every lead of the patient, tell the providers who received it to delete it, and keep
    a proof row with no personal data. Commits.

    `shown`: the references listed to whoever confirmed it; PatientRequestsChanged, nothing
    erased, unless they are still exactly the patient's leads (a request may have arrived since).
    A lead that arrives while this runs is not among `leads`, so is not erased either.
    ErasureFailed, nothing erased, when one lead's step fails: the person who asked is told, not
    shown a crash, and may try again."""
    leads = patient_leads(identifier)
    if shown is not None and set(shown) != {lead.reference for lead in leads}:
        raise PatientRequestsChanged(leads, set(shown))
    ids = [lead.id for lead in leads]
    try:
        return _erase(leads, user_id=user_id, door=door, detail=_door(user_id))
    except Exception as exc:
        db.session.rollback()
        # The kind of error only: its text may quote the patient's data.
        log.error("erasure of lead(s) %s failed (%s); nothing was erased", ids, type(exc).__name__)
        raise ErasureFailed from exc


def _erase(
    leads: list[Lead], *, user_id: int | None, door: str, detail: str, note: Note | None = None
) -> ErasureRecord:
    """The erasure itself, whichever door it came through: `leads` closed if open, their clinics
    told, anonymised, each with an "erased" history entry (`note` in it) and an access-log row
    (`detail`), and one proof row. Commits."""
    actor_type = "staff" if user_id else "system"
    for lead in leads:
        # The lead first, as every path that changes it and its assignments: a clinic's answer at
        # this moment waits, or is already in what is erased (its note among the events).
        lock_lead(lead.id)
        if lead.status in OPEN:
            # An erased request is over: its open quotes close and the clinics still waiting are
            # released, so none is reminded, has it expire against its record, or sees it again.
            move_lead(
                lead,
                S.CLOSED_LOST,
                actor_type=actor_type,
                actor_user_id=user_id,
                why=Note("because_erased"),
            )
        _notify_providers_who_received(lead, "notice_provider_erasure", "erasure")
        anonymise(lead)
        lead.add_event("erased", actor_type=actor_type, actor_user_id=user_id, note=note)
        db.session.add(AccessLog(user_id=user_id, lead_id=lead.id, action=ERASURE, detail=detail))
    record = ErasureRecord(user_id=user_id, door=door, references=[lead.reference for lead in leads])
    db.session.add(record)
    db.session.commit()
    log.info("erasure %s (%s): %d lead(s) erased", record.id, door, len(leads))
    return record


def notify_providers_of_withdrawal(lead: Lead) -> int:
    """Tell each provider that received the lead that the patient withdrew; how many emails."""
    return _notify_providers_who_received(lead, "notice_provider_withdrawn", "withdrawn")


def _notify_providers_who_received(lead: Lead, template: str, kind: str) -> int:
    """One notice per assignment and provider address that was sent (or is being sent) an email
    about the lead (`_recipients`), keyed `{kind}:{assignment id}:{address}`: once, however often
    it is called. Rendered by the worker that sends it, where an email that cannot be made fails
    alone: the erasure or withdrawal it tells of never waits on its words."""
    recipients = _recipients(lead)
    for assignment, address in recipients:
        queue_email(
            template=template,
            to=address,
            lead_id=lead.id,
            idempotency_key=f"{kind}:{assignment.id}:{address}",
            reply_to=current_app.config["COORDINATOR_EMAIL"],
            language=provider_language(assignment.provider),
            render_later=True,
            reference=lead.reference,
        )
    return len(recipients)


def _recipients(lead: Lead) -> list[tuple[Assignment, str]]:
    """Each (assignment, address) the lead went to, or is going to, in a provider email: the
    notification, a reminder, a quote email, or a coordinator's resend of any of them.

    The assignment is the one the email is about (`provider_email_assignments`: an email row has no
    assignment column, so its template and key tell, a resend followed back to its original). The
    provider's address list is not used: it may have changed since, and clinics may share one."""
    named = provider_email_assignments(lead.id)
    emails = db.session.execute(
        sa.select(EmailMessage.id, EmailMessage.to_address).where(
            EmailMessage.id.in_(sorted(named)),
            EmailMessage.status.in_([EmailStatus.SENT, EmailStatus.SENDING]),
        )
    ).all()
    assignments = {assignment.id: assignment for assignment in lead.assignments}
    recipients: set[tuple[int, str]] = set()
    for email in emails:
        assignment_id = named[email.id]
        if assignment_id in assignments:
            recipients.add((assignment_id, email.to_address))
        else:
            log.warning("lead %s: provider email %s names no assignment of the lead", lead.id, email.id)
    return [(assignments[assignment_id], address) for assignment_id, address in sorted(recipients)]


def anonymise(lead: Lead) -> None:
    """Irreversibly remove the patient's personal data and words from `lead`, its history, its
    assignments' notes and its stored emails. In the caller's transaction."""
    now = utcnow()
    cancel_provider_emails(lead.id, Note("because_erased"))
    patient_key = lead.email_key
    lead.full_name = lead.email = lead.phone = lead.details = ""
    lead.diagnosis_date = lead.injury_level = lead.referrer = lead.submission_key = None
    lead.utm_term = lead.utm_content = None
    lead.status_reason = None if lead.status_reason is None else ERASED_NOTE.stored
    lead.anonymised_at = now
    db.session.execute(
        sa.update(LeadEvent)
        .where(LeadEvent.lead_id == lead.id, LeadEvent.note.is_not(None))
        .values(note=ERASED_NOTE.english, note_data=ERASED_NOTE.data)
    )
    db.session.execute(
        sa.update(Assignment)
        .where(Assignment.lead_id == lead.id)
        .values(response_note=None)
        .execution_options(synchronize_session="fetch")
    )
    # A clinic's message to the patient may name them; prices and inclusions stay for statistics.
    quotes = sa.select(Quote.id).where(Quote.lead_id == lead.id)
    db.session.execute(sa.update(QuoteRevision).where(QuoteRevision.quote_id.in_(quotes)).values(message=""))
    # Unsent mail about the lead is never sent; every stored email keeps its row, status and
    # Message-ID but loses its words and, for the patient's, the address.
    db.session.execute(
        sa.update(EmailMessage)
        .where(EmailMessage.lead_id == lead.id, EmailMessage.status == EmailStatus.QUEUED)
        .where(~EmailMessage.template.startswith("notice_provider_", autoescape=True))
        .values(status=EmailStatus.CANCELLED.value)
    )
    emails = EmailMessage.lead_id == lead.id
    db.session.execute(
        sa.update(EmailMessage)
        .where(emails, ~EmailMessage.template.startswith("notice_provider_", autoescape=True))
        .values(
            subject="", body_text="", body_html="", render_context=None, last_error=None, last_error_data=None
        )
    )
    if patient_key:
        # The lead's few emails, compared by their addresses' keys in Python (`email_key`; the
        # email table stores none): the database's lower() would miss øRSTED@ sent as ØRSTED@.
        addresses = db.session.execute(sa.select(EmailMessage.id, EmailMessage.to_address).where(emails))
        to_patient = [email_id for email_id, address in addresses if email_key(address) == patient_key]
        db.session.execute(
            sa.update(EmailMessage).where(EmailMessage.id.in_(to_patient)).values(to_address="")
        )


# Retention anonymises this many leads a transaction, and at most MOST_PER_RUN of each kind a run;
# a run begins no batch after RUN_SECONDS, well inside a task's soft time limit (at least 240 s).
BATCH = 500
MOST_PER_RUN = 10_000
RUN_SECONDS = 180
# Every status falls under one retention rule (a test holds it): an ended request after its
# period, a booked one after its follow-up too, spam and repeats soon; every other status is still
# open, and is closed and anonymised once nobody has acted on the request for the stalled period.
ENDED = frozenset({S.CLOSED_LOST, S.WITHDRAWN, S.UNROUTABLE})
JUNK = frozenset({S.SPAM, S.DUPLICATE})
STALLABLE = frozenset(S) - ENDED - JUNK - {S.BOOKED}


@dataclass
class RetentionResult:
    closed_leads: int = 0
    stalled_leads: int = 0
    spam_and_duplicates: int = 0
    email_bodies: int = 0
    erasures: int = 0  # patients' erasure requests carried out at their deadline, each with its requests
    failed: int = 0  # requests a rule could not act on (logged by lead id): the next run tries again
    sign_in_records: int = 0  # failed sign-ins' counts past their use (typed addresses, client keys)


@dataclass(frozen=True)
class RetentionRules:
    """Each retention rule's condition at one moment: the run acts on what they pick, and its
    preview (`flask privacy retention`) counts it, so the two never disagree on a rule."""

    closed_leads: sa.ColumnElement[bool]
    stalled_leads: sa.ColumnElement[bool]
    spam_and_duplicates: sa.ColumnElement[bool]
    email_bodies: sa.ColumnElement[bool]  # on EmailMessage, the others on Lead
    erasures: sa.ColumnElement[bool]  # the leads whose erasure request is due
    stalled_months: int


def retention_rules(now: datetime) -> RetentionRules:
    """The rules as the settings define them at `now`."""
    config = current_app.config
    month = timedelta(days=30)
    closed_before = now - config["RETENTION_CLOSED_MONTHS"] * month
    booked_before = closed_before - config["RETENTION_BOOKED_FOLLOW_UP_MONTHS"] * month
    junk_before = now - timedelta(days=config["RETENTION_SPAM_DAYS"])
    stalled_months = config["RETENTION_STALLED_MONTHS"]
    # A lead whose erasure the patient asked for is left to the erasure (due within a month, on
    # the coordinators' list), which also tells the clinics that received it; retention tells nobody.
    waiting = sa.and_(Lead.anonymised_at.is_(None), Lead.erasure_requested_at.is_(None))
    closed = sa.or_(
        sa.and_(Lead.status.in_(sorted(ENDED)), untouched(closed_before)),
        sa.and_(Lead.status == S.BOOKED, untouched(booked_before)),
    )
    junk = sa.and_(Lead.status.in_(sorted(JUNK)), untouched(junk_before))
    return RetentionRules(
        closed_leads=sa.and_(waiting, closed),
        stalled_leads=sa.and_(waiting, stalled(now - stalled_months * month)),
        spam_and_duplicates=sa.and_(waiting, junk),
        email_bodies=old_email_words(now - timedelta(days=config["RETENTION_EMAIL_BODY_DAYS"])),
        erasures=erasure_due(now),
        stalled_months=stalled_months,
    )


# Coordinators see an open request this long before retention closes it for inactivity (the
# queue's "closing" filter and the lead page): time to act on it, or to let it go.
CLOSING_WARNING = timedelta(days=30)


def closing_for_inactivity(now: datetime) -> sa.ColumnElement[bool]:
    """Open requests retention will close for inactivity within CLOSING_WARNING of `now` unless
    someone acts on them: what its rule will pick then, as the run's own rule defines it."""
    return retention_rules(now + CLOSING_WARNING).stalled_leads


def apply_retention(now: datetime | None = None) -> RetentionResult:
    """Anonymise what has been kept long enough; idempotent, so beat may run it any time. Commits."""
    now = now or utcnow()
    rules = retention_rules(now)
    # Each step starts no new batch after the run's time is up (a backlog, such as the first run
    # after an upgrade, goes on at the next run). The erasures that are due first: the patient's
    # deadline has passed, and they are few; then the old email words, the cheapest.
    deadline = time.monotonic() + RUN_SECONDS
    stalled_note = Note("closed_by_retention", months=rules.stalled_months)
    erasures, failed_erasures = erase_due_requests(rules.erasures, deadline)
    email_bodies = _clear_email_bodies(rules.email_bodies, deadline)
    closed_leads, failed_closed = _anonymise_where(rules.closed_leads, deadline)
    stalled_leads, failed_stalled = _anonymise_where(rules.stalled_leads, deadline, closing_note=stalled_note)
    # After the stalled requests: a repeat anonymised here would no longer show the patient asked again.
    spam_and_duplicates, failed_junk = _anonymise_where(rules.spam_and_duplicates, deadline)
    sign_in_records = _forget_sign_in_failures(now)
    result = RetentionResult(
        closed_leads=closed_leads,
        stalled_leads=stalled_leads,
        spam_and_duplicates=spam_and_duplicates,
        email_bodies=email_bodies,
        erasures=erasures,
        failed=failed_erasures + failed_closed + failed_stalled + failed_junk,
        sign_in_records=sign_in_records,
    )
    log.info(
        "retention: %d due erasure(s) carried out, %d closed lead(s), %d stalled lead(s) closed, "
        "%d spam/duplicate(s) anonymised, %d email body(ies) removed, %d request(s) failed, "
        "%d sign-in failure record(s) deleted",
        result.erasures,
        result.closed_leads,
        result.stalled_leads,
        result.spam_and_duplicates,
        result.email_bodies,
        result.failed,
        result.sign_in_records,
    )
    return result


def _forget_sign_in_failures(now: datetime) -> int:
    """Delete the sign-in throttle's, the ceiling's and the device cookies' counts past their use
    (the first two hold the addresses typed into the sign-in form and client keys): each failure
    deletes them too, but without failures they would stay. One committed transaction; how many rows."""
    config = current_app.config
    deleted = (
        throttle.forget_stale(now)
        + ceiling.forget_ended(now, timedelta(minutes=config["LOGIN_ACCOUNT_WINDOW_MINUTES"]))
        + device_lock.forget_ended(now, timedelta(minutes=config["LOGIN_DEVICE_WINDOW_MINUTES"]))
    )
    db.session.commit()
    return deleted


# The rules that pick leads, in the order a run applies them (each named as in RetentionRules).
LEAD_RULES = ("erasures", "closed_leads", "stalled_leads", "spam_and_duplicates")


@dataclass
class RetentionPreview:
    """What a run would act on, rule by rule: `counts` named as RetentionResult's fields (for
    `erasures`, the requests due, each erased with the requests sent from its address before
    it), and, when asked, the first `references` of each lead rule."""

    counts: dict[str, int]
    references: dict[str, list[str]]


def preview_retention(now: datetime | None = None, *, listed: int = 0) -> RetentionPreview:
    """What a retention run at `now` would act on, counted with the run's own conditions
    (`retention_rules`) but not its limits per run; with `listed`, the references of the first
    `listed` leads of each lead rule, in the run's order. Reads only: a write would be refused."""
    rules = retention_rules(now or utcnow())
    with look_ups_first():
        counts = {name: _count(Lead, getattr(rules, name)) for name in LEAD_RULES}
        counts["email_bodies"] = _count(EmailMessage, rules.email_bodies)
        references = {
            name: list(
                db.session.scalars(
                    sa.select(Lead.reference).where(getattr(rules, name)).order_by(Lead.id).limit(listed)
                )
            )
            for name in (LEAD_RULES if listed else ())
        }
    db.session.rollback()
    return RetentionPreview(counts, references)


def _count(model, condition: sa.ColumnElement[bool]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(condition))


def erase_due_requests(due: sa.ColumnElement[bool], deadline: float) -> tuple[int, int]:
    """Carry out each erasure request `due` picks (`erasure_due`) as an admin's click would, with
    the requests sent from the same address (`own_requests`), one committed erasure at a time in
    id order, none begun after `deadline`; how many, and how many failed. Nothing when
    ERASURE_AUTOMATIC_WHEN_DUE is off.

    One that fails is logged by id and left to the next run, and the others go on: a patient's
    erasure must not wait on another's broken data."""
    if not current_app.config["ERASURE_AUTOMATIC_WHEN_DUE"]:
        return 0, 0
    done = after = failed = 0
    while done < MOST_PER_RUN and time.monotonic() < deadline:
        lead_id = db.session.scalar(sa.select(Lead.id).where(due, Lead.id > after).order_by(Lead.id).limit(1))
        if lead_id is None:
            break
        after = lead_id
        try:
            done += _erase_when_due(lead_id)
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: what is left goes on at the next run
        except Exception as exc:
            db.session.rollback()
            failed += 1
            # The kind of error only: its text may quote the patient's data.
            log.error(
                "lead %s: its due erasure failed (%s); the next run tries again", lead_id, type(exc).__name__
            )
    return done, failed


def _erase_when_due(lead_id: int) -> int:
    """Erase the patient's data of a lead whose erasure is due, with the requests sent from its
    email address before it was asked for (`own_requests`); 1, or 0 when another run (or an
    admin, or a step on one of the requests) holds one of them, or it was erased meanwhile: the
    next run sees to it, or it is done."""
    asking = db.session.get(Lead, lead_id)
    leads = own_requests(asking)
    if not leads:  # erased meanwhile, with another request of the patient
        db.session.rollback()
        return 0
    # Each lead is locked as `lock_lead` locks it, all at once and without waiting (PostgreSQL):
    # two runs never erase one patient twice, nor wait on each other's leads in opposite orders.
    # Asked again once locked, which on PostgreSQL also sees what was committed meanwhile.
    ids = sorted(lead.id for lead in leads)
    held = db.session.scalars(
        sa.select(Lead.id)
        .where(Lead.id.in_(ids), Lead.anonymised_at.is_(None))
        .order_by(Lead.id)
        .with_for_update(skip_locked=True, key_share=True)
    ).all()
    if lead_id not in held or held != ids:
        db.session.rollback()
        return 0
    # What an admin's list would have added (a shared phone number, a duplicate mark, a request
    # sent since) stays, says so in its history, and the coordinators are told to judge it: it
    # waits on their list (`left_by_erasure_at`) until one of them records a check or it is erased.
    now = utcnow()
    for other in _left_by_the_deadline(leads):
        other.left_by_erasure_at = other.left_by_erasure_at or now
        other.add_event(
            "note", actor_type="system", note=Note("left_at_deadline", reference=asking.reference)
        )
        email_coordinators(
            other,
            template="coordinator_patient_request",
            idempotency_key=f"left-at-deadline:{other.id}:{asking.id}",
            summary=_l(
                "The data of %(reference)s was erased at its erasure deadline. This request is linked "
                "to it (by email address, phone number or a duplicate mark) and was not erased: check "
                "whether it is the same patient's, and erase it from its page if so.",
                reference=asking.reference,
            ),
        )
    _erase(leads, user_id=None, door=DEADLINE, detail=AT_DEADLINE_DETAIL, note=AT_DEADLINE_NOTE)
    return 1


def _left_by_the_deadline(erased: list[Lead]) -> list[Lead]:
    """The requests an admin's erasure of the same patient would have listed beside `erased`."""
    ids = {lead.id for lead in erased}
    return [lead for lead in _linked_leads(erased) if lead.id not in ids and lead.anonymised_at is None]


EMAIL_BATCH = 1_000
EMAILS_PER_RUN = 100_000


def old_email_words(before: datetime) -> sa.ColumnElement[bool]:
    """Emails settled before `before` that still hold words, what would have rendered them (an
    email cancelled before it was), or the server's answer, which often repeats the recipient's
    address."""
    return sa.and_(
        EmailMessage.created_at < before,
        EmailMessage.status.in_([EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.CANCELLED]),
        sa.or_(
            EmailMessage.body_text != "",
            EmailMessage.render_context.is_not(None),
            EmailMessage.last_error.is_not(None),
            EmailMessage.last_error_data.is_not(None),
        ),
    )


def _clear_email_bodies(old: sa.ColumnElement[bool], deadline: float) -> int:
    """Clear the words of the emails `old` picks (`old_email_words`), a committed batch at a time
    in id order (at most EMAILS_PER_RUN a run, none begun after `deadline`; the next run goes on);
    how many. Rows another run holds are skipped (PostgreSQL): two runs, each holding email rows of
    the leads it anonymises, never wait on each other's rows in opposite orders."""
    cleared = after = 0
    while cleared < EMAILS_PER_RUN and time.monotonic() < deadline:
        ids = db.session.scalars(
            sa.select(EmailMessage.id)
            .where(old, EmailMessage.id > after)
            .order_by(EmailMessage.id)
            .limit(min(EMAIL_BATCH, EMAILS_PER_RUN - cleared))
            .with_for_update(skip_locked=True)
        ).all()
        if ids:
            db.session.execute(
                sa.update(EmailMessage)
                .where(EmailMessage.id.in_(ids))
                .values(
                    subject="",
                    body_text="",
                    body_html="",
                    render_context=sa.null(),
                    last_error=None,
                    last_error_data=sa.null(),
                )
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
        cleared += len(ids)
        if len(ids) < EMAIL_BATCH:
            break
        after = ids[-1]
    return cleared


def stalled(before: datetime) -> sa.ColumnElement[bool]:
    """Leads still open that nothing has happened to since `before`: the lead row unchanged and no
    entry in its history, whoever would have written it (the patient, a clinic, a coordinator, the
    system), and no repeat of the request sent or changed since. Every step on a lead, its quotes
    and its assignments writes a history entry; a request marked a repeat of this one means the
    patient asked again."""
    repeat = aliased(Lead)
    return sa.and_(
        Lead.status.in_(sorted(STALLABLE)),
        untouched(before),
        ~sa.exists().where(repeat.duplicate_of_id == Lead.id, repeat.updated_at >= before),
    )


def untouched(before: datetime) -> sa.ColumnElement[bool]:
    """Leads nothing has happened to since `before`: the row unchanged and no history entry since
    (a coordinator's note on a closed request keeps it as long as a move would)."""
    return sa.and_(
        Lead.updated_at < before,
        ~sa.exists().where(LeadEvent.lead_id == Lead.id, LeadEvent.created_at >= before),
    )


def _anonymise_where(condition, deadline: float, *, closing_note: Note | None = None) -> tuple[int, int]:
    """Anonymise the leads `condition` picks, a batch at a time in id order, each batch committed
    with its proof row; at most MOST_PER_RUN a run and no batch begun after `deadline`, so a run
    always ends in time (the next one goes on). With `closing_note`, each lead is first closed as
    a coordinator closes one (`move_lead`). How many were anonymised, and how many failed.

    A batch that fails is done again one lead at a time: a lead that fails is logged by id and
    left to the next run, and the others go on, as `erase_due_requests` does."""
    after = done = failed = 0
    while done < MOST_PER_RUN and time.monotonic() < deadline:
        ids = db.session.scalars(
            sa.select(Lead.id)
            .where(condition, Lead.id > after)
            .order_by(Lead.id)
            .limit(min(BATCH, MOST_PER_RUN - done))
        ).all()
        if not ids:
            break
        try:
            done += _anonymise_batch(ids, condition, closing_note)
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: what is left goes on at the next run
        except Exception:
            db.session.rollback()
            for lead_id in ids:
                try:
                    done += _anonymise_batch([lead_id], condition, closing_note)
                except SoftTimeLimitExceeded:
                    raise
                except Exception as exc:
                    db.session.rollback()
                    failed += 1
                    # The kind of error only: its text may quote the patient's data.
                    log.error(
                        "lead %s: retention could not anonymise it (%s); the next run tries again",
                        lead_id,
                        type(exc).__name__,
                    )
        if len(ids) < BATCH:
            break
        after = ids[-1]
    return done, failed


def _anonymise_batch(ids: list[int], condition, closing_note: Note | None) -> int:
    """Anonymise the leads of `ids` `condition` still picks, with one proof row; committed. How many."""
    # Rows a concurrent run holds are skipped (PostgreSQL; SQLite runs one writer at a time): two
    # beats, or a redelivered task, never anonymise one lead twice. The lead is the first lock,
    # taken as `lock_lead` takes it (rows referencing the lead, an access-log row, can still be
    # written meanwhile).
    leads = db.session.scalars(
        sa.select(Lead)
        .where(Lead.id.in_(ids), condition)
        .order_by(Lead.id)
        .with_for_update(skip_locked=True, key_share=True)
    ).all()
    # Asked again once they are locked: on PostgreSQL this statement also sees what was committed
    # while the first one ran (a clinic's answer just before the lock); every step that acts on
    # a lead (a note, a move, an answer, a choice) takes its lock, so waits until this batch commits.
    locked = [lead.id for lead in leads]
    still = set(db.session.scalars(sa.select(Lead.id).where(Lead.id.in_(locked), condition)))
    anonymised = [lead for lead in leads if lead.id in still]
    for lead in anonymised:
        if closing_note is not None:
            _close(lead)
        anonymise(lead)
        if closing_note is not None:
            # Our words, not the patient's: they stay beside the status they explain.
            lead.status_reason = closing_note.stored
        lead.add_event("anonymised", actor_type="system", note=closing_note or Note("retention_over"))
    if anonymised:
        references = [lead.reference for lead in anonymised]
        db.session.add(ErasureRecord(user_id=None, door=RETENTION, references=references))
    db.session.commit()
    return len(anonymised)


def _close(lead: Lead) -> None:
    """Close the lead as a coordinator's move does: its open quotes close, waiting clinics are
    released and unsent provider emails cancelled, so no reminder goes out. The clinics are not
    told, as for any closed request (the patient's withdrawal and erasure tell them). The move's
    note would be removed with the others by `anonymise`: the closing note comes after it."""
    move_lead(lead, S.CLOSED_LOST, actor_type="system", why=Note("because_retention"))

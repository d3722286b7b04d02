"""Quote services: the clinic sends, revises and withdraws its quote and confirms the booking;
the patient chooses one quote or none. Each step locks the lead row, so a choice happens once."""

import logging
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from leads.extensions import db
from leads.i18n import danish_day, isolate, patient_language
from leads.intake.choices import CONTACT_PREFERENCES, label_for
from leads.messaging.email import (
    PROVIDER_TEMPLATE_PREFIX,
    cancel_provider_emails,
    email_coordinators,
    email_patient,
)
from leads.messaging.urls import patient_link, provider_link
from leads.models import (
    Assignment,
    AssignmentStatus,
    Lead,
    LeadEvent,
    Provider,
    ProviderTreatment,
    Quote,
    QuoteRevision,
)
from leads.notes import Note
from leads.quotes import rules
from leads.quotes.rules import QuoteInput
from leads.routing.notification import KEY_PREFIXES, email_provider, provider_language
from leads.routing.responses import check_available
from leads.routing.service import lock_lead, stop_sharing_if_closed
from leads.timeutil import utcnow
from leads.workdays import danish_date
from leads.workflow import CHOICE_MADE, ENGAGED, QUOTE_OPEN, LeadStatus, QuoteStatus, sharing_refusal

log = logging.getLogger(__name__)
# The patient may choose while the lead waits for a decision; afterwards a choice is refused.
DECIDING = frozenset({LeadStatus.QUOTED})


class QuoteRefused(Exception):
    """A step on a quote that cannot be taken; the message says why, in words for the person."""


class InvalidQuote(QuoteRefused):
    """The quote's fields break a rule; `problems` maps each field to its message."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems.values()))
        self.problems = problems


def _lock_lead(lead_id: int) -> Lead:
    """The lead, locked for this transaction by routing's `lock_lead` (it must exist)."""
    lead = lock_lead(lead_id)
    if lead is None:
        raise LookupError(f"no lead {lead_id}")
    return lead


def _refuse(message: str):
    db.session.rollback()
    raise QuoteRefused(message)


def sending_refusal(assignment: Assignment) -> str | None:
    """Why this clinic may not send or change its quote now; None when it may."""
    if assignment.status != AssignmentStatus.ACCEPTED:
        return gettext("Accept the request before you send a quote.")
    if assignment.lead.status in CHOICE_MADE:
        return gettext("The patient has already chosen, so the quote can no longer be changed.")
    if assignment.lead.status not in (LeadStatus.CONTACTED, LeadStatus.QUOTED):
        # A coordinator moved the request back (its quotes closed with the move): a quote sent now
        # would show as live to a patient who cannot choose it.
        return gettext(
            "The coordinators have put this request on hold, so no quote can be sent now; write to them."
        )
    quote = assignment.quote
    if quote is not None and quote.status == QuoteStatus.CLOSED:
        return gettext(
            "The coordinators closed this request's quotes; write to them if you want to send a new one."
        )
    if quote is not None and quote.status not in QUOTE_OPEN:
        return gettext("The patient has already decided about this quote, so it can no longer be changed.")
    return None


def _clinic_side(assignment_id: int) -> tuple[Assignment, Lead]:
    """The clinic's assignment, fresh under its lead's lock, if its link still gives access."""
    assignment = db.session.get(Assignment, assignment_id)
    lead = _lock_lead(assignment.lead_id)
    db.session.refresh(assignment)
    check_available(assignment)
    return assignment, lead


def send_quote(
    assignment_id: int, data: QuoteInput, now: datetime | None = None, *, revising: int | None = None
) -> Quote:
    """Send the clinic's first quote or a revision of it, tell the patient, move the lead to quoted.

    `revising`: the revision the clinic's form was opened on (0 for none). A quote sent since then
    (from another tab, or the same form sent twice by a double click) refuses it, so the patient
    gets no revision, and no email about one, that the clinic did not mean to send on top of it.
    """
    now = now or utcnow()
    assignment, lead = _clinic_side(assignment_id)
    refusal = sending_refusal(assignment)
    if refusal:
        _refuse(refusal)
    if revising is not None and revising != (assignment.quote.revision if assignment.quote else 0):
        _refuse(
            gettext(
                "Your quote changed after this page was opened (perhaps in another tab), so this one "
                "was not sent. Check your quote below and send a revision if it is still needed."
            )
        )
    problems = rules.quote_problems(data, today=danish_date(now))
    if problems:
        db.session.rollback()
        raise InvalidQuote(problems)
    provider = assignment.provider
    quote = assignment.quote
    if quote is None:
        quote = Quote(assignment=assignment, lead_id=lead.id, revision=1)
        db.session.add(quote)
    else:
        quote.revision += 1
        if quote.status != QuoteStatus.LIVE:
            quote.change_status(QuoteStatus.LIVE)
        # A revision is the renewal the patient may have asked for; a later expiry may be renewed again.
        quote.renewal_requested_at = None
    revision = QuoteRevision(
        quote=quote,
        number=quote.revision,
        price_from=data.price_from,
        price_to=data.price_to,
        currency=data.currency,
        includes=list(data.includes),
        earliest_start=data.earliest_start,
        valid_days=data.valid_days,
        valid_until=rules.valid_until(now, data.valid_days),
        needs_records=data.needs_records,
        message=data.message.strip(),
        created_at=now,
    )
    db.session.add(revision)
    db.session.flush()
    first = quote.revision == 1
    terms = {"provider": provider.name, "price": _price(revision), "until": revision.last_valid_day}
    lead.add_event(
        "quote_sent" if first else "quote_revised",
        actor_type="provider",
        actor_provider_id=provider.id,
        note=Note("quote_sent", **terms)
        if first
        else Note("quote_revised", revision=quote.revision, **terms),
    )
    if lead.status == LeadStatus.CONTACTED:
        lead.change_status(
            LeadStatus.QUOTED,
            actor_type="provider",
            actor_provider_id=provider.id,
            note=Note("first_quote", provider=provider.name),
        )
    email_patient(
        lead,
        template="patient_quote",
        idempotency_key=f"quote:{quote.id}:{quote.revision}:patient",
        provider_name=provider.name,
        revised=not first,
        link=patient_link(lead.id, patient_language(lead.preferred_language)),
    )
    db.session.commit()
    log.info("quote %s: revision %s sent", quote.id, quote.revision)
    return quote


def withdraw_quote(assignment_id: int) -> Quote:
    """The clinic withdraws its live quote before the patient chooses."""
    assignment, lead = _clinic_side(assignment_id)
    refusal = sending_refusal(assignment)
    quote = assignment.quote
    if refusal or quote is None or quote.status != QuoteStatus.LIVE:
        _refuse(refusal or gettext("There is no live quote to withdraw."))
    quote.change_status(QuoteStatus.WITHDRAWN)
    provider = assignment.provider
    lead.add_event(
        "quote_withdrawn",
        actor_type="provider",
        actor_provider_id=provider.id,
        note=Note("quote_withdrawn", provider=provider.name),
    )
    _back_to_contacted_without_live_quotes(lead, actor_type="provider", actor_provider_id=provider.id)
    _tell_patient(lead, quote, "patient_quote_withdrawn", f"quote-withdrawn:{quote.id}:{quote.revision}")
    db.session.commit()
    return quote


def _back_to_contacted_without_live_quotes(lead: Lead, **actor) -> None:
    """A quoted lead whose last live quote was withdrawn or expired waits for quotes again."""
    still_live = any(q.status == QuoteStatus.LIVE for q in _quotes_of(lead.id))
    if lead.status == LeadStatus.QUOTED and not still_live:
        lead.change_status(LeadStatus.CONTACTED, note=Note("no_live_quote"), **actor)


def _tell_patient(lead: Lead, quote: Quote, template: str, key: str) -> None:
    """A short email about one clinic's quote: the clinic's name and the patient's link, no detail."""
    email_patient(
        lead,
        template=template,
        idempotency_key=f"{key}:patient",
        provider_name=quote.assignment.provider.name,
        link=patient_link(lead.id, patient_language(lead.preferred_language)),
    )


def expire_quote(quote_id: int, now: datetime | None = None) -> bool:
    """Move a live quote past its validity to expired (once; a revision sent meanwhile wins)."""
    now = now or utcnow()
    quote = db.session.get(Quote, quote_id)
    lead = _lock_lead(quote.lead_id)
    db.session.refresh(quote)
    if quote.status != QuoteStatus.LIVE or quote.current.valid_until >= now:
        db.session.rollback()
        return False
    _expire(quote, lead)
    db.session.commit()
    return True


def _expire(quote: Quote, lead: Lead) -> None:
    quote.change_status(QuoteStatus.EXPIRED)
    provider = quote.assignment.provider
    lead.add_event(
        "quote_expired",
        actor_type="system",
        actor_provider_id=provider.id,
        note=Note("quote_expired", provider=provider.name, date=quote.current.last_valid_day),
    )
    _back_to_contacted_without_live_quotes(lead, actor_type="system")


def _closed_to_patient(lead: Lead) -> str | None:
    """The sharing rule as the patient reads it (its own wording is the clinics')."""
    if sharing_refusal(lead) is None:
        return None
    return gettext(
        "Your request is no longer open, so this cannot be done. Please write to us if you need help."
    )


def renewal_refusal(quote: Quote, lead: Lead, now: datetime) -> str | None:
    """Why the patient may not ask the clinic to renew this quote; None when they may."""
    refusal = _closed_to_patient(lead)
    if refusal:
        return refusal
    if quote.status in (QuoteStatus.LIVE, QuoteStatus.EXPIRED) and not is_expired(quote, now):
        return gettext("This quote has not expired, so it needs no renewal.")
    if quote.status not in (QuoteStatus.LIVE, QuoteStatus.EXPIRED):
        return gettext("This quote can no longer be renewed.")
    if lead.status not in (LeadStatus.CONTACTED, LeadStatus.QUOTED):
        return gettext("Your request no longer waits for quotes, so this quote cannot be renewed.")
    assignment = quote.assignment
    if assignment.status != AssignmentStatus.ACCEPTED or not assignment.provider.links_open:
        return gettext(
            "This clinic can no longer renew its quote. A coordinator can help: reply to our email."
        )
    return None


def request_renewal(lead_id: int, quote_id: int, now: datetime | None = None) -> bool:
    """The patient asks the clinic to renew its expired quote: the clinic gets a short email with its
    link. Once per expiry: False when the patient has already asked."""
    now = now or utcnow()
    lead = _lock_lead(lead_id)
    quote = db.session.get(Quote, quote_id)
    if quote is None or quote.lead_id != lead.id:
        _refuse(gettext("This quote is not part of your request."))
    db.session.refresh(quote)
    refusal = renewal_refusal(quote, lead, now)
    if refusal:
        _refuse(refusal)
    if quote.renewal_requested_at is not None:
        db.session.rollback()
        return False
    if quote.status == QuoteStatus.LIVE:
        # Past its validity before the sweep reached it.
        _expire(quote, lead)
    quote.renewal_requested_at = now
    assignment = quote.assignment
    provider = assignment.provider
    lead.add_event(
        "quote_renewal_requested",
        actor_type="patient",
        actor_provider_id=provider.id,
        note=Note("renewal_requested", provider=provider.name),
    )
    email_provider(
        assignment,
        PROVIDER_TEMPLATE_PREFIX + "quote_renewal",
        f"{KEY_PREFIXES['quote_renewal']}:{quote.id}:{quote.revision}",
        reference=lead.reference,
        provider_name=provider.name,
        link=provider_link(assignment.id),
    )
    db.session.commit()
    return True


def close_open_quotes(lead: Lead, *, actor_type: str, why: Note, actor_user_id: int | None = None) -> int:
    """Close the lead's quotes the patient had not decided about (live, expired, withdrawn): nobody
    can choose or revise them any more. A chosen quote stays chosen (`end_choice` ends it). In the
    caller's transaction; `why` ends the history's sentence (a `because_…` note)."""
    closed = [q for q in _quotes_of(lead.id) if q.status in QUOTE_OPEN]
    now = utcnow()
    for quote in closed:
        quote.change_status(QuoteStatus.CLOSED)
        quote.decided_at = now
    if closed:
        lead.add_event(
            "quotes_closed",
            actor_type=actor_type,
            actor_user_id=actor_user_id,
            note=Note("quotes_closed", count=len(closed), why=why),
        )
    return len(closed)


def move_lead(
    lead: Lead,
    target: str,
    *,
    actor_type: str,
    why: Note,
    actor_user_id: int | None = None,
    note: str | None = None,
    reason: str | None = None,
) -> LeadEvent:
    """Move the lead outside the quotes' own steps (a coordinator by hand): through the workflow
    (IllegalTransition otherwise, before anything changed), its open quotes close with `why`, a
    move out of chosen or booked ends the patient's choice (`end_choice`), and a lead that may no
    longer be shared stops being shared. In the caller's transaction, under the lead's lock."""
    chose = lead.status in CHOICE_MADE
    event = lead.change_status(
        target, actor_type=actor_type, actor_user_id=actor_user_id, note=note, reason=reason
    )
    close_open_quotes(lead, actor_type=actor_type, actor_user_id=actor_user_id, why=why)
    if chose and lead.status not in CHOICE_MADE:
        end_choice(lead, actor_type=actor_type, actor_user_id=actor_user_id, why=why)
    stop_sharing_if_closed(lead)
    return event


def end_choice(lead: Lead, *, actor_type: str, why: Note, actor_user_id: int | None = None) -> int:
    """End the patient's standing choice: the chosen quote becomes choice_ended, so a later round
    can be chosen, and the chosen clinic's assignment closes (its acceptance still counts as one)
    with its unsent provider emails cancelled. The clinic is not emailed, as for any closed lead.
    In the caller's transaction; how many choices ended (0 or 1)."""
    chosen = [q for q in _quotes_of(lead.id) if q.status == QuoteStatus.CHOSEN]
    for quote in chosen:
        quote.change_status(QuoteStatus.CHOICE_ENDED)
        assignment, provider = quote.assignment, quote.assignment.provider
        if assignment.status == AssignmentStatus.ACCEPTED:
            assignment.change_status(AssignmentStatus.CLOSED)
        cancel_provider_emails(lead.id, Note("because_choice_ended", why=why), [assignment.id])
        lead.add_event(
            "choice_ended",
            actor_type=actor_type,
            actor_user_id=actor_user_id,
            actor_provider_id=provider.id,
            note=Note("choice_ended", provider=provider.name, why=why),
        )
    return len(chosen)


def choice_refusal(quote: Quote, lead: Lead, now: datetime, seen_revision: int | None = None) -> str | None:
    """Why the patient may not choose this quote; None when they may. The one rule of choosing.
    `seen_revision`: when they confirm, the revision their confirmation step showed them."""
    refusal = _closed_to_patient(lead)
    if refusal:
        return refusal
    # A choice a coordinator ended (choice_ended) is an earlier round's: it does not count.
    if lead.status in CHOICE_MADE or any(q.status == QuoteStatus.CHOSEN for q in _quotes_of(lead.id)):
        return gettext("You have already chosen a clinic, so this choice was not made.")
    if quote.status == QuoteStatus.WITHDRAWN:
        return gettext("The clinic has withdrawn this quote, so it can no longer be chosen.")
    if quote.status == QuoteStatus.EXPIRED or is_expired(quote, now):
        return gettext(
            "This quote expired on %(date)s, so it can no longer be chosen. "
            "You can ask the clinic to renew it with the button beside the quote.",
            date=danish_day(quote.current.last_valid_day),
        )
    if quote.status != QuoteStatus.LIVE or lead.status not in DECIDING:
        return gettext("This quote can no longer be chosen.")
    if not quote.assignment.provider.links_open:
        # Paused until reactivated: its links are closed, so it could not confirm the booking.
        return gettext(
            "This clinic is not taking new patients just now, so its quote cannot be chosen. "
            "A coordinator can help: reply to our email."
        )
    if seen_revision is not None and seen_revision != quote.revision:
        # The clinic revised it (perhaps a higher price) after the patient's confirmation step.
        return gettext(
            "%(clinic)s changed its quote after you opened it, so your choice was not made. "
            "Please check the new quote and choose again if it suits you.",
            clinic=isolate(quote.assignment.provider.name),
        )
    return None


def quote_for_patient(lead: Lead, quote_id: int) -> Quote | None:
    """The quote if it belongs to this patient's request; None for another patient's or none."""
    quote = db.session.get(Quote, quote_id)
    return quote if quote is not None and quote.lead_id == lead.id else None


def is_expired(quote: Quote, now: datetime) -> bool:
    return quote.status == QuoteStatus.EXPIRED or quote.current.valid_until < now


def choose_quote(lead_id: int, quote_id: int, seen_revision: int, now: datetime | None = None) -> Quote:
    """The patient goes ahead with one clinic: exactly one choice per lead, however many clicks, and
    only the revision they confirmed (`seen_revision`)."""
    now = now or utcnow()
    lead = _lock_lead(lead_id)
    quote = db.session.get(Quote, quote_id)
    if quote is None or quote.lead_id != lead.id:
        _refuse(gettext("This quote is not part of your request."))
    db.session.refresh(quote)
    refusal = choice_refusal(quote, lead, now, seen_revision)
    if refusal:
        _refuse(refusal)
    chosen = quote.assignment
    quote.change_status(QuoteStatus.CHOSEN)
    quote.decided_at = now
    others = _end_other_quotes(lead, keep=chosen, now=now, reason=Note("because_chose_other"))
    provider = chosen.provider
    lead.add_event(
        "quote_chosen",
        actor_type="patient",
        note=Note("quote_chosen", provider=provider.name, revision=quote.revision),
    )
    lead.change_status(
        LeadStatus.CHOSEN, actor_type="patient", note=Note("patient_chose", provider=provider.name)
    )
    email_provider(
        chosen,
        PROVIDER_TEMPLATE_PREFIX + "quote_chosen",
        f"{KEY_PREFIXES['quote_chosen']}:{quote.id}",
        reference=lead.reference,
        provider_name=provider.name,
        contact_preference=label_for(CONTACT_PREFERENCES, lead.contact_preference),
        link=provider_link(chosen.id),
    )
    # The patient's own record of the choice: a quote is chosen once, so its key sends it once.
    _tell_patient(lead, quote, "patient_quote_chosen", f"quote-chosen:{quote.id}")
    _tell_not_chosen(lead, others)
    email_coordinators(
        lead,
        template="coordinator_patient_request",
        idempotency_key=f"quote-chosen:{lead.id}:{_round(lead, 'quote_chosen')}:coordinators",
        summary=_l(
            "The patient chose the quote of %(provider)s. Other clinics told: %(count)d.",
            provider=provider.name,
            count=len(others),
        ),
    )
    db.session.commit()
    log.info("lead %s: quote %s chosen", lead.id, quote.id)
    return quote


def decline_all_quotes(lead_id: int, now: datetime | None = None) -> int:
    """ "None of these suit me": close the open quotes, release the clinics, ask the coordinators to
    look for other clinics (the lead tops their queue). How many clinics were released."""
    now = now or utcnow()
    lead = _lock_lead(lead_id)
    refusal = _closed_to_patient(lead)
    if refusal:
        _refuse(refusal)
    if lead.status != LeadStatus.QUOTED:
        _refuse(gettext("You have no quotes waiting for your decision."))
    others = _end_other_quotes(lead, keep=None, now=now, reason=Note("because_none_suited"))
    reason = Note("none_suitable")
    lead.add_event("reroute_requested", actor_type="patient", note=reason)
    lead.change_status(LeadStatus.UNROUTABLE, actor_type="patient", note=reason, reason=reason)
    _tell_not_chosen(lead, others)
    email_coordinators(
        lead,
        template="coordinator_patient_request",
        idempotency_key=f"quotes-declined:{lead.id}:{_round(lead, 'reroute_requested')}:coordinators",
        summary=_l(
            "The patient found none of the quotes suitable and asks for other clinics. "
            "Look for other clinics from the lead page."
        ),
    )
    db.session.commit()
    return len(others)


def _round(lead: Lead, kind: str) -> int:
    """How many `kind` events the lead has had, this one included: a coordinators' email keyed by
    it goes once per round (after a re-route, or a choice a coordinator ended, it is news again)."""
    return sum(1 for event in lead.events if event.kind == kind)


def _end_other_quotes(
    lead: Lead, *, keep: Assignment | None, now: datetime, reason: Note
) -> list[Assignment]:
    """Close the other clinics' open quotes and end their assignments as not_chosen (never counted
    against them), their unsent provider emails cancelled; the assignments that had accepted, to be
    told politely."""
    for other_quote in _quotes_of(lead.id):
        if other_quote.assignment_id != getattr(keep, "id", None) and other_quote.status in QUOTE_OPEN:
            other_quote.change_status(QuoteStatus.NOT_CHOSEN)
            other_quote.decided_at = now
    told, ended = [], []
    for assignment in lead.assignments:
        if assignment is keep or assignment.status not in ENGAGED:
            continue
        if assignment.status == AssignmentStatus.ACCEPTED:
            told.append(assignment)
        assignment.change_status(AssignmentStatus.NOT_CHOSEN)
        ended.append(assignment.id)
        lead.add_event(
            "assignment_not_chosen",
            actor_type="system",
            actor_provider_id=assignment.provider_id,
            note=Note("not_chosen", provider=assignment.provider.name, why=reason),
        )
    # A notification or reminder still queued (retrying after a refusal) would show them a request
    # the patient has decided about.
    cancel_provider_emails(lead.id, Note("because_request_ended", why=reason), ended)
    return told


def _tell_not_chosen(lead: Lead, assignments: list[Assignment]) -> None:
    # Not a provider_ template: the thank-you goes out even if the lead later stops being shareable.
    for assignment in assignments:
        email_provider(
            assignment,
            "notice_provider_not_chosen",
            f"not-chosen:{assignment.id}",
            reference=lead.reference,
            provider_name=assignment.provider.name,
        )


def booking_refusal(assignment: Assignment) -> str | None:
    quote = assignment.quote
    if quote is None or quote.status != QuoteStatus.CHOSEN:
        return gettext("Only the clinic the patient chose can confirm a booking.")
    if assignment.lead.status == LeadStatus.BOOKED:
        return gettext("The booking is already confirmed.")
    if assignment.lead.status != LeadStatus.CHOSEN:
        return gettext("This request cannot be booked now; please write to the coordinators.")
    return None


def confirm_booking(assignment_id: int, treatment_date: date, now: datetime | None = None) -> Quote:
    """The chosen clinic confirms the treatment is booked for a date: the lead becomes booked."""
    now = now or utcnow()
    assignment, lead = _clinic_side(assignment_id)
    refusal = booking_refusal(assignment)
    if refusal:
        _refuse(refusal)
    if treatment_date < danish_date(now):  # the clinic's date, as a quote's earliest start
        _refuse(gettext("The treatment date cannot be in the past."))
    quote = assignment.quote
    quote.booked_at, quote.treatment_date = now, treatment_date
    provider = assignment.provider
    note = Note("booked", provider=provider.name, date=treatment_date)
    lead.add_event("treatment_booked", actor_type="provider", actor_provider_id=provider.id, note=note)
    lead.change_status(LeadStatus.BOOKED, actor_type="provider", actor_provider_id=provider.id, note=note)
    email_coordinators(
        lead,
        template="coordinator_booking",  # the clinic's step: not "Patient request on ..."
        idempotency_key=f"booked:{lead.id}:{_round(lead, 'treatment_booked')}:coordinators",
        summary=_l(
            "%(provider)s confirmed the treatment is booked for %(date)s.",
            provider=provider.name,
            date=treatment_date.isoformat(),
        ),
    )
    db.session.commit()
    return quote


def _quotes_of(lead_id: int) -> list[Quote]:
    return list(db.session.scalars(sa.select(Quote).filter_by(lead_id=lead_id).order_by(Quote.id)))


def _price(revision: QuoteRevision) -> Note:
    return Note("price", currency=revision.currency, low=revision.price_from, high=revision.price_to)


def quote_evidence(lead: Lead, provider: Provider) -> str | None:
    """The evidence statement for this clinic's offer of the lead's treatment (its own status for
    the treatment, else the treatment's)."""
    offered = db.session.get(ProviderTreatment, (provider.id, lead.treatment_id))
    return rules.evidence_statement(offered.evidence_status if offered else lead.treatment.evidence_status)


@dataclass
class QuoteCard:
    """One quote as the patient, the clinic and the coordinators see it."""

    quote: Quote
    provider: Provider
    revision: QuoteRevision
    evidence: str | None
    # The clinic writes its message to the patient in a language we do not record; the one it reads
    # our emails in is the best guess, so that a screen reader reads the message in that voice.
    message_language: str
    conversion: rules.Conversion | None
    includes: list[str]
    excludes: list[str]
    answer_seconds: float
    expired: bool


def quote_card(quote: Quote, now: datetime | None = None) -> QuoteCard:
    now = now or utcnow()
    assignment, revision = quote.assignment, quote.current
    rates = current_app.extensions.get("currency_rates", {})
    return QuoteCard(
        quote=quote,
        provider=assignment.provider,
        revision=revision,
        evidence=quote_evidence(assignment.lead, assignment.provider),
        message_language=provider_language(assignment.provider),
        conversion=rules.indicative_conversion(
            revision.price_from, revision.price_to, revision.currency, rates
        ),
        includes=[label for key, label in rules.INCLUDES.items() if key in revision.includes],
        excludes=[label for key, label in rules.INCLUDES.items() if key not in revision.includes],
        answer_seconds=(quote.revisions[0].created_at - assignment.created_at).total_seconds(),
        expired=is_expired(quote, now),
    )


def staff_quotes(lead: Lead, now: datetime | None = None) -> list[QuoteCard]:
    """Every quote of the lead, whatever its status, for the coordinators."""
    return [quote_card(q, now) for q in _quotes_of(lead.id)]


def patient_quotes(lead: Lead, now: datetime | None = None) -> tuple[list[QuoteCard], list[QuoteCard]]:
    """The quotes the patient can compare (live and in time, in the order they came) and the rest."""
    now = now or utcnow()
    cards = [quote_card(q, now) for q in _quotes_of(lead.id)]
    live = [c for c in cards if c.quote.status == QuoteStatus.LIVE and not c.expired]
    return live, [c for c in cards if c not in live]

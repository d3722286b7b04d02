"""The words staff pages show for stored codes (statuses, roles), translated when shown: the
database keeps the codes."""

from flask_babel import lazy_gettext as _l

# Every lead status, in the workflow's order (and the stats funnel's first stage, received).
LEAD_STATUSES = {
    "received": _l("Received"),
    "new": _l("New"),
    "needs_review": _l("Needs review"),
    "routed": _l("Routed"),
    "contacted": _l("Contacted"),
    "quoted": _l("Quoted"),
    "chosen": _l("Chosen"),
    "booked": _l("Booked"),
    "closed_lost": _l("Closed lost"),
    "unroutable": _l("Unroutable"),
    "duplicate": _l("Duplicate"),
    "spam": _l("Spam"),
    "withdrawn": _l("Withdrawn"),
}
ASSIGNMENT_STATUSES = {
    "notified": _l("Notified"),
    "viewed": _l("Viewed"),
    "accepted": _l("Accepted"),
    "declined": _l("Declined"),
    "expired": _l("Expired"),
    "withdrawn": _l("Withdrawn"),
    "closed": _l("Closed"),
    "not_chosen": _l("Not chosen"),
}
QUOTE_STATUSES = {
    "live": _l("Live"),
    "withdrawn": _l("Withdrawn"),
    "expired": _l("Expired"),
    "chosen": _l("Chosen"),
    "choice_ended": _l("Choice ended"),
    "not_chosen": _l("Not chosen"),
    "closed": _l("Closed"),
}
EMAIL_STATUSES = {
    "queued": _l("Queued"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
}
ROLES = {"admin": _l("Admin"), "coordinator": _l("Coordinator")}
# What happened, in a lead's timeline (LeadEvent.kind); a kind not listed shows as its words.
EVENT_KINDS = {
    "submitted": _l("Request received"),
    "status_changed": _l("Status changed"),
    "assigned": _l("Assigned"),
    "provider_assigned": _l("Provider notified"),
    "provider_viewed": _l("Provider opened the request"),
    "provider_accepted": _l("Provider accepted"),
    "provider_declined": _l("Provider declined"),
    "provider_reminded": _l("Provider reminded"),
    "provider_paused": _l("Provider paused"),
    "assignment_expired": _l("Provider did not answer in time"),
    "assignment_not_chosen": _l("Other clinic chosen"),
    "routing_approved": _l("Routing approved"),
    "reroute_requested": _l("Re-routing asked for"),
    "rerouted": _l("Re-routed"),
    "sharing_stopped": _l("Sharing stopped"),
    "quote_sent": _l("Quote sent"),
    "quote_revised": _l("Quote revised"),
    "quote_withdrawn": _l("Quote withdrawn"),
    "quote_expired": _l("Quote expired"),
    "quote_chosen": _l("Quote chosen"),
    "choice_ended": _l("Choice ended"),
    "quote_reminder_sent": _l("Clinic reminded to quote"),
    "quote_renewal_requested": _l("Quote renewal asked for"),
    "quotes_closed": _l("Quotes closed"),
    "patient_reminded_of_quotes": _l("Patient reminded of the quotes"),
    "treatment_booked": _l("Treatment booked"),
    "first_price_range": _l("First price range"),
    "consent_withdrawn": _l("Consent withdrawn"),
    "erasure_requested": _l("Erasure asked for"),
    "erased": _l("Data erased"),
    "left_by_erasure_checked": _l("Checked after an erasure"),
    "anonymised": _l("Anonymised"),
    "email_failed": _l("Email failed"),
    "email_resent": _l("Email queued again"),
    "email_may_have_arrived_twice": _l("Email may have arrived twice"),
    "note": _l("Note"),
}
# Where a patient gave their consent (Consent.source_form, leads/consent.py).
CONSENT_SOURCES = {"public_quote_form": _l("The public quote form")}
# The parts of a provider's routing score (Assignment.score_breakdown, leads/routing/engine.py).
SCORE_PARTS = {
    "specialty_fit": _l("Specialty fit"),
    "language": _l("Language"),
    "response_rate": _l("Response rate"),
    "response_time": _l("Response time"),
    "fairness": _l("Fairness"),
}

KINDS = {
    "lead": LEAD_STATUSES,
    "assignment": ASSIGNMENT_STATUSES,
    "quote": QUOTE_STATUSES,
    "email": EMAIL_STATUSES,
    "role": ROLES,
    "event": EVENT_KINDS,
    "score": SCORE_PARTS,
    "consent_source": CONSENT_SOURCES,
}


def label(value: str | None, kind: str = "lead") -> str:
    """The reader's word for a stored code; an unknown code as readable words."""
    words = KINDS[kind].get(value or "")
    return str(words) if words is not None else (value or "—").replace("_", " ").capitalize()

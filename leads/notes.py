"""What the system writes in a lead's history (`LeadEvent.note`) and in its status reason
(`Lead.status_reason`), stored without words and worded in the reader's language when shown.

A `Note` is what it says (`what`, a key of `SAID`) and its values. Its data is stored
(`LeadEvent.note_data`; a status reason holds it as JSON text) and worded when a staff page shows
it (`describe_event`, `describe_reason`); the event's `note` keeps its English sentence for the
patient's data export, the CSV export and as the fallback. A value is inserted as it is when it
is a name or someone's words (a clinic's name, a staff member's email, a coordinator's typed
reason, a mail server's answer), worded when it is itself a note (a nested `Note`, or the
`{"what": ...}` data `leads.intake.spam` returns), a date or a list. What a person typed
alone (a coordinator's note, a clinic's decline note) is stored as text and shown as typed.
Rows written before hold English text, shown as it is (a fixed status reason of those days,
marked for the catalogs, is translated)."""

import json
from collections.abc import Callable
from datetime import date
from functools import lru_cache

from babel.dates import format_date
from flask_babel import force_locale, format_decimal, gettext, ngettext
from flask_babel import lazy_gettext as _l

from leads.i18n import DEFAULT_LANGUAGE, N_, money, page_language
from leads.routing import engine
from leads.workflow import SHARING_REFUSALS

# What each hard filter of a routing says of the providers it ruled out.
RULED_OUT = {
    engine.INACTIVE: _l("deactivated"),
    engine.PAUSED_UNTIL: _l("paused for now"),
    engine.ALREADY_TRIED: _l("already had this patient"),
    engine.TREATMENT_NOT_OFFERED: _l("do not offer the treatment"),
    engine.CONDITION_NOT_ACCEPTED: _l("do not accept the condition"),
    engine.CAPACITY_USED: _l("weekly capacity used up"),
    engine.NO_ADDRESS: _l("no notification address"),
}


class Note:
    """One thing the system says: `what` (a key of SAID) and its values (names, numbers, dates,
    lists, other notes). A note SAID has no words for is refused as it is written, never stored
    to show as raw data."""

    __slots__ = ("data",)

    def __init__(self, what: str, **values) -> None:
        self.data = _known({"what": what, **{name: _stored(value) for name, value in values.items()}})

    @property
    def english(self) -> str:
        """Its English sentence, as the event's `note` keeps it. Values its words cannot take (a
        name where a number goes, one missing) are refused here, as it is written."""
        if self.data["what"] in RECURRING:
            return _english(self.stored)
        return _english.__wrapped__(self.stored)

    @property
    def stored(self) -> str:
        """Its data as text, as a status reason keeps it (a few dozen characters)."""
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))


# Notes whose English sentence is kept once worded: the same few recur on the form's path (every
# form writes "Sent the quote form" with the same consent version), and switching the locale to
# word one costs more than the rest of it. Only notes without anyone's words: a sentence kept in
# memory would outlive the erasure of what it quotes.
RECURRING = frozenset({"submitted"})


@lru_cache(maxsize=64)
def _english(stored: str) -> str:
    with force_locale(DEFAULT_LANGUAGE):
        sentence = words(json.loads(stored))
    if sentence is None:
        raise ValueError(f"the note {json.loads(stored)['what']!r} cannot be worded with its values")
    return sentence


def _known(data: dict) -> dict:
    if data["what"] not in SAID:
        raise ValueError(f"the note {data['what']!r} has no words: add them to leads.notes.SAID")
    return data


def _stored(value):
    if isinstance(value, Note):
        return value.data
    if isinstance(value, dict):
        return _known(value)
    if isinstance(value, date):
        return {"what": "date", "date": value.isoformat()}
    if isinstance(value, list | tuple):
        return [_stored(item) for item in value]
    return value


def fixed(text: str) -> Note:
    """A fixed text marked for the catalogs where it is defined (N_, `workflow.sharing_refusal`)."""
    return Note("fixed", text=text)


def no_provider(result: engine.MatchResult) -> Note:
    """Why a routing found nobody: the engine's hard-filter reasons counted, no words."""
    return Note("no_provider", ruled_out=[[code, count] for code, count in result.ruled_out()])


def _no_provider(data: dict) -> str:
    counts = [
        gettext("%(reason)s (%(count)d)", reason=RULED_OUT.get(code, code), count=count)
        for code, count in data["ruled_out"]
    ]
    if not counts:
        return gettext("No provider offers this treatment.")
    return gettext("No provider fits this request. Ruled out: %(reasons)s.", reasons=", ".join(counts))


def _fixed(data: dict) -> str:
    """A text marked with N_ where it is defined, through the catalogs (passed by name, so that
    extraction does not take the key for a text)."""
    text = data["text"]
    return gettext(text)


def _date(data: dict) -> str:
    return format_date(date.fromisoformat(data["date"]), "long", locale=page_language())


def _price(data: dict) -> str:
    low, high = (money(data[end], data["currency"]) for end in ("low", "high"))
    return gettext("%(low)s to %(high)s", low=low, high=high)


def _lead_status(data: dict) -> str:
    from leads.staff.labels import LEAD_STATUSES  # the staff pages' words; loaded after this module

    return str(LEAD_STATUSES[data["status"]])


def _decline_reason(data: dict) -> str:
    from leads.routing.responses import DECLINE_REASONS  # its form's words; loaded after this module

    return str(DECLINE_REASONS[data["reason"]])


def _closed_and_cancelled(closed: int, cancelled: int) -> dict:
    """The two counts of stopped sharing, each with its own plural form (stored `ended`/`closed`
    and `cancelled`)."""
    return {
        "assignments": ngettext("%(num)d open assignment closed", "%(num)d open assignments closed", closed),
        "emails": ngettext(
            "%(num)d unsent provider email cancelled", "%(num)d unsent provider emails cancelled", cancelled
        ),
    }


def _sharing_stopped(data: dict) -> str:
    return gettext("%(assignments)s, %(emails)s.", **_closed_and_cancelled(data["ended"], data["cancelled"]))


def _consent_withdrawn(data: dict) -> str:
    return gettext(
        "Consent withdrawn: %(assignments)s, %(emails)s.",
        **_closed_and_cancelled(data["closed"], data["cancelled"]),
    )


def _quotes_closed(data: dict) -> str:
    return ngettext(
        "%(num)d open quote closed: %(why)s",
        "%(num)d open quotes closed: %(why)s",
        data["count"],
        why=_worded(data["why"]),
    )


# Every note the system writes, and its words: a sentence with placeholders for its values (a
# list is joined with "; "), or a function of its data.
SAID: dict[str, str | Callable[[dict], str]] = {
    # Values worded in their own way.
    "fixed": _fixed,
    "date": _date,
    "price": _price,
    "lead_status": _lead_status,
    "decline_reason": _decline_reason,
    "no_provider": _no_provider,
    # The intake.
    "submitted": N_("Sent the quote form (consent text %(version)s)."),
    "spam": N_("Looks like spam: %(reasons)s."),
    "spam_hidden_field": N_("the hidden field people never see was filled in"),
    "spam_link_in_name": N_("the name contains a link"),
    "spam_links": N_("the details contain %(links)d links (more than %(most)d)"),
    "spam_phrases": N_("advertising phrases: %(phrases)s"),
    "duplicate": N_("Same email or phone as %(reference)s within %(days)d days"),
    "duplicate_not_routed": N_(
        "Same email or phone as %(reference)s within %(days)d days; not routed again."
    ),
    # Routing.
    "investigational": N_("The treatment is investigational: a coordinator approves routing first."),
    "investigational_reason": N_("Investigational treatment: waiting for a coordinator to approve routing."),
    "routing_approved": N_("Routing approved by %(email)s."),
    "provider_assigned": N_("Assigned to %(provider)s (rank %(rank)d, score %(score)s)."),
    "sent_to": N_("Sent to: %(names)s."),
    "rerouted": N_("%(reason)s Sent to: %(names)s."),
    "rerouted_none_left": N_("%(reason)s No provider left: %(why)s"),
    "sharing_stopped": _sharing_stopped,
    "provider_viewed": N_("%(provider)s opened the request."),
    "provider_accepted": N_("%(provider)s accepted."),
    "provider_accepted_with_note": N_("%(provider)s accepted. Note: %(note)s"),
    "provider_declined": N_("%(provider)s declined: %(reason)s."),
    "provider_declined_with_note": N_("%(provider)s declined: %(reason)s. Note: %(note)s"),
    "provider_will_contact": N_("%(provider)s will contact the patient."),
    "provider_declined_reason": N_("%(provider)s declined."),
    "provider_reminded": N_("Reminder sent to %(provider)s: no answer yet."),
    "no_answer": N_("%(provider)s did not answer within %(days)d working days."),
    "every_address_refused": N_("Every notification address of %(provider)s refused the email: %(answer)s"),
    "provider_paused": N_(
        "%(provider)s was paused: every one of its notification addresses refused the email about "
        "%(count)d leads"
    ),
    # Quotes.
    "quote_sent": N_("%(provider)s sent a quote: %(price)s, valid until %(until)s."),
    "quote_revised": N_(
        "%(provider)s revised its quote (revision %(revision)d): %(price)s, valid until %(until)s."
    ),
    "first_quote": N_("%(provider)s sent the first quote."),
    "quote_withdrawn": N_("%(provider)s withdrew its quote."),
    "no_live_quote": N_("No live quote is left."),
    "quote_expired": N_("The quote of %(provider)s expired on %(date)s."),
    "renewal_requested": N_("The patient asked %(provider)s to renew its expired quote."),
    "quotes_closed": _quotes_closed,
    "choice_ended": N_(
        "The patient's choice of %(provider)s ended; its link no longer shows the lead: %(why)s"
    ),
    "quote_chosen": N_("The patient chose the quote of %(provider)s (revision %(revision)d)."),
    "patient_chose": N_("The patient chose %(provider)s."),
    "none_suitable": N_("The patient found none of the quotes suitable and asks for other clinics."),
    "not_chosen": N_("%(provider)s: the request ended because %(why)s."),
    "booked": N_("%(provider)s confirmed the treatment is booked for %(date)s."),
    "quote_reminder_sent": N_("Reminder sent to %(provider)s: accepted, but no quote yet."),
    "patient_reminded": N_("Reminder sent: the quotes wait for a choice."),
    # Why quotes closed or a choice ended (the end of a sentence above).
    "because_chose_other": N_("the patient chose another clinic"),
    "because_none_suited": N_("none of the quotes suited the patient"),
    "because_erased": N_("the patient's data was erased."),
    "because_retention": N_("the request was closed by retention."),
    "because_withdrawn": N_("the patient withdrew consent."),
    "because_moved": N_("a coordinator moved the lead to %(status)s."),
    # The patient's own steps.
    "consent_withdrawn_status": N_("The patient withdrew consent."),
    "consent_withdrawn": _consent_withdrawn,
    "erasure_requested": N_("The patient asked for their data to be erased."),
    # Privacy and retention.
    "erased": N_("(removed when the patient's data was erased)"),
    "erased_at_deadline": N_(
        "Carried out automatically: the patient's erasure request had reached its deadline."
    ),
    "left_at_deadline": N_(
        "The data of %(reference)s was erased at its erasure deadline; this request, linked to it by its "
        "email address, a phone number or a duplicate mark, was not: check whether it is the same "
        "patient's, and erase it from this page if so."
    ),
    "closed_by_retention": N_("Closed by retention: no activity for %(months)d months."),
    "retention_over": N_("Retention period over."),
    # Emails.
    "email_failed": N_("Email '%(template)s' could not be delivered: %(error)s"),
    "email_erased_while_sent": N_(
        "Not delivered, and not tried again: its words were erased while the server was asked."
    ),
    # Written when a claim was taken back, by releases before `email_may_have_arrived_twice`; such
    # events still read so.
    "email_resent": N_(
        "Email '%(template)s' goes out again: the worker sending it stopped before recording the mail "
        "server's answer, so it may arrive twice (with the same Message-ID)."
    ),
    "email_may_have_arrived_twice": N_(
        "Email '%(template)s' was delivered, but an earlier attempt had handed it to the mail server "
        "and was cut off before the server's answer: it may have arrived twice (with the same "
        "Message-ID)."
    ),
    # Around a coordinator's action on the lead page.
    "assigned_to": N_("Assigned to %(email)s"),
    "unassigned": N_("Unassigned"),
    "duplicate_marked": N_("Duplicate of %(reference)s"),
    "duplicate_marked_with_note": N_("Duplicate of %(reference)s: %(note)s"),
    "spam_marked": N_("Marked as spam by a coordinator"),
    "left_by_erasure_checked": N_(
        "Checked after the erasure at the deadline: not the same patient as the erased request, so kept."
    ),
}


def words(data: dict) -> str | None:
    """What stored note data says, in the page's language; None for data this code does not
    know or cannot word (the caller then shows the English it stored)."""
    said = SAID.get(data.get("what")) if isinstance(data, dict) else None
    if said is None:
        return None
    try:
        if callable(said):
            return said(data)
        values = {name: _worded(value) for name, value in data.items() if name != "what"}
        return gettext(said) % values  # always formatted: a value missing is refused, not shown as %(…)s
    except (KeyError, TypeError, ValueError):
        return None


def _worded(value):
    if isinstance(value, dict):
        worded = words(value)
        if worded is None:
            raise ValueError(f"no words for {value.get('what')!r}")
        return worded
    if isinstance(value, list):
        return "; ".join(str(_worded(item)) for item in value)
    if isinstance(value, float):
        return format_decimal(value)  # a score: 72.5, 72,5
    return value


def describe_event(note: str | None, note_data: dict | None) -> str:
    """A history entry's note in the reader's language: the system's words from its data, a
    person's words (and an entry written before notes had data) as stored."""
    return (words(note_data) if note_data else None) or note or ""


# The status reasons releases before migration 0018n stored as their English text, marked for the
# catalogs: still translated when shown. Any other text is a person's, shown as typed.
FIXED_BEFORE = frozenset(
    {*SHARING_REFUSALS, SAID["investigational_reason"], SAID["none_suitable"], SAID["erased"]}
)


def describe_reason(stored: str) -> str:
    """A lead's status reason in the reader's language: the system's from its data, a fixed
    reason of earlier days translated (FIXED_BEFORE), a person's as typed."""
    try:
        data = json.loads(stored) if stored.startswith("{") else None
    except ValueError:
        data = None
    if data is None:
        return gettext(stored) if stored in FIXED_BEFORE else stored
    return words(data) or stored

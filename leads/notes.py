"""What the system writes in a lead's history (`LeadEvent.note`) and in its status reason
(`Lead.status_reason`), stored without words and worded in the reader's language when shown.

A `Note` is what it says (`what`, a key of `SAID`) and its values. Its data is stored
(`LeadEvent.note_data`; a status reason holds it as JSON text) and worded when a staff page shows
it (`describe_event`, `describe_reason`); the event's `note` keeps its English sentence for the
patient's data export, the CSV export and as the fallback. A value is inserted as it is when it
is a name or someone's words (a clinic's name, a staff member's email, a coordinator's typed
reason), worded when it is itself a note (a nested `Note`, or the `{"what": ...}` data
`leads.intake.spam` returns), a date or a list. A mail server's answer (or an error's text) is
quoted as given (`verbatim`): isolated left to right in the words, set as code on a page
(`as_html`). What a person typed alone (a coordinator's note, a clinic's decline note) is stored
as text and shown as typed. Rows written before hold English text, shown as it is (a fixed status
reason of those days, marked for the catalogs, is translated).

Why an email was not sent or not delivered is a note too, kept beside the email's English
`last_error` (`EmailMessage.last_error_data`) and worded by `describe_problem`."""

import json
import re
from collections.abc import Callable
from datetime import date
from functools import lru_cache

from babel.dates import format_date
from flask_babel import LazyString, force_locale, format_decimal, gettext, ngettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from leads.i18n import DEFAULT_LANGUAGE, N_, in_sentence, money, page_language
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

    @property
    def lazy(self) -> LazyString:
        """Its words in the language current when they are read: an email's summary, made in its
        reader's language (`email_coordinators`)."""
        return LazyString(words, self.data)


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


# Words quoted as given are cut to this many characters: a mail server's answer can run long.
VERBATIM_MOST = 300
# Unicode's directional isolates: LEFT-TO-RIGHT ISOLATE … POP DIRECTIONAL ISOLATE set a quoted
# text apart (`_verbatim`), and none may come from the text itself.
_LRI, _PDI = "\u2066", "\u2069"
_ISOLATES = re.compile("[\u2066-\u2069]")
_QUOTED = re.compile(f"{_LRI}([^\u2066-\u2069]*){_PDI}")


def verbatim(text: str) -> Note:
    """Words the system quotes as given and never translates: a mail server's answer ("550 5.1.1
    user unknown"), the text of an error."""
    return Note("verbatim", text=str(text)[:VERBATIM_MOST])


def _verbatim(data: dict) -> str:
    """Quoted words isolated left to right (LRI … PDI): a server's answer keeps its order inside an
    Arabic sentence, and the sentence its own; a page sets them as code (`as_html`)."""
    return f"{_LRI}{_ISOLATES.sub('', data['text'])}{_PDI}"


def quoted_html(text: str) -> Markup:
    """Words quoted as given, for a page where no note holds them (an address's last refusal)."""
    return as_html(_verbatim({"text": text}))


def as_html(text: str) -> Markup:
    """A note or reason as worded (`words`) for a page: escaped, each quoted text (`_verbatim`)
    set as code in <bdi dir="ltr">, as its left-to-right isolate says in plain text."""
    escaped = str(escape(text))
    return Markup(_QUOTED.sub(r'<bdi dir="ltr"><code>\1</code></bdi>', escaped))  # noqa: S704  (escaped first)


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


def _assignment_status(data: dict) -> str:
    from leads.staff.labels import label  # the staff pages' words; loaded after this module

    # Never refused: the sender words it as it cancels an email, and an unknown code reads as words.
    return label(data["status"], "assignment")


def _decline_reason(data: dict) -> str:
    """The reason as said after the colon of "… declined: %(reason)s." (`in_sentence`)."""
    from leads.routing.responses import DECLINE_REASONS  # its form's words; loaded after this module

    return in_sentence(DECLINE_REASONS[data["reason"]])


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


def _rerouted(data: dict) -> str:
    """A re-route and whom it reached. The system's reason is a sentence of its own, said first; a
    coordinator's typed reason is quoted as typed, last, so that it never runs into a sentence of
    the system's (typed without a full stop, or with one before the quote's own)."""
    if isinstance(data["reason"], dict):
        return gettext("%(reason)s Sent to: %(names)s.", reason=_worded(data["reason"]), names=data["names"])
    return gettext(
        "Sent to: %(names)s. Reason given: “%(reason)s”", names=data["names"], reason=data["reason"]
    )


def _rerouted_none_left(data: dict) -> str:
    """A re-route that found nobody, and why; a typed reason quoted last, as for `_rerouted`."""
    why = _worded(data["why"])
    if isinstance(data["reason"], dict):
        return gettext("%(reason)s No provider left: %(why)s", reason=_worded(data["reason"]), why=why)
    return gettext("No provider left: %(why)s Reason given: “%(reason)s”", why=why, reason=data["reason"])


def _quotes_closed(data: dict) -> str:
    return ngettext(
        "%(num)d open quote closed: %(why)s",
        "%(num)d open quotes closed: %(why)s",
        data["count"],
        why=_worded(data["why"]),
    )


# The counted sentences below: each is one ngettext, its count `num` (stored under the name it had
# when the sentence was one text, so rows written before are worded the same way).
def _spam_links(data: dict) -> str:
    return ngettext(
        "the details contain %(num)d link (more than %(most)d)",
        "the details contain %(num)d links (more than %(most)d)",
        data["links"],
        most=data["most"],
    )


def _duplicate(data: dict) -> str:
    return ngettext(
        "Same email or phone as %(reference)s within %(num)d day",
        "Same email or phone as %(reference)s within %(num)d days",
        data["days"],
        reference=data["reference"],
    )


def _duplicate_not_routed(data: dict) -> str:
    return ngettext(
        "Same email or phone as %(reference)s within %(num)d day; not routed again.",
        "Same email or phone as %(reference)s within %(num)d days; not routed again.",
        data["days"],
        reference=data["reference"],
    )


def _no_answer(data: dict) -> str:
    return ngettext(
        "%(provider)s did not answer within %(num)d working day.",
        "%(provider)s did not answer within %(num)d working days.",
        data["days"],
        provider=data["provider"],
    )


def _provider_paused(data: dict) -> str:
    return ngettext(
        "%(provider)s was paused: every one of its notification addresses refused the email about "
        "%(num)d lead",
        "%(provider)s was paused: every one of its notification addresses refused the email about "
        "%(num)d leads",
        data["count"],
        provider=data["provider"],
    )


def _mail_gave_up(data: dict) -> str:
    return ngettext(
        "Gave up after %(num)d attempt; the last one: %(last)s",
        "Gave up after %(num)d attempts; the last one: %(last)s",
        data["attempts"],
        last=_worded(data["last"]),
    )


def _closed_by_retention(data: dict) -> str:
    return ngettext(
        "Closed by retention: no activity for %(num)d month.",
        "Closed by retention: no activity for %(num)d months.",
        data["months"],
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
    "assignment_status": _assignment_status,
    "no_provider": _no_provider,
    "verbatim": _verbatim,
    # The intake.
    "submitted": N_("Sent the quote form (consent text %(version)s)."),
    "spam": N_("Looks like spam: %(reasons)s."),
    "spam_hidden_field": N_("the hidden field people never see was filled in"),
    "spam_link_in_name": N_("the name contains a link"),
    "spam_links": _spam_links,
    "spam_phrases": N_("advertising phrases: %(phrases)s"),
    "duplicate": _duplicate,
    "duplicate_not_routed": _duplicate_not_routed,
    # Routing.
    "investigational": N_("The treatment is investigational: a coordinator approves routing first."),
    "investigational_reason": N_("Investigational treatment: waiting for a coordinator to approve routing."),
    "routing_approved": N_("Routing approved by %(email)s."),
    "provider_assigned": N_("Assigned to %(provider)s (rank %(rank)d, score %(score)s)."),
    "sent_to": N_("Sent to: %(names)s."),
    "rerouted": _rerouted,
    "rerouted_none_left": _rerouted_none_left,
    "sharing_stopped": _sharing_stopped,
    "provider_viewed": N_("%(provider)s opened the request."),
    "provider_accepted": N_("%(provider)s accepted."),
    "provider_accepted_with_note": N_("%(provider)s accepted. Note: %(note)s"),
    "provider_declined": N_("%(provider)s declined: %(reason)s."),
    "provider_declined_with_note": N_("%(provider)s declined: %(reason)s. Note: %(note)s"),
    "provider_will_contact": N_("%(provider)s will contact the patient."),
    "provider_declined_reason": N_("%(provider)s declined."),
    "provider_reminded": N_("Reminder sent to %(provider)s: no answer yet."),
    "no_answer": _no_answer,
    # The mail server's words quoted: a re-route's sentence follows them (`_rerouted`).
    "every_address_refused": N_(
        "Every notification address of %(provider)s refused the email: “%(answer)s”."
    ),
    "provider_paused": _provider_paused,
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
    "closed_by_retention": _closed_by_retention,
    "retention_over": N_("Retention period over."),
    # Emails: in the history, and why one was not sent or not delivered (`EmailMessage.last_error_data`).
    "email_failed": N_("Email '%(template)s' could not be delivered: %(error)s"),
    "email_unmade": N_("Email '%(template)s' could not be made and was not sent: %(error)s"),
    "email_erased_while_sent": N_(
        "Not delivered, and not tried again: its words were erased while the server was asked."
    ),
    # Written when a claim was taken back, by releases before `email_may_have_arrived_twice`; such
    # events still read so.
    "email_resent": N_(
        "Email '%(template)s' goes out again: the worker sending it stopped before recording the mail "
        "server's answer, so it may arrive twice (with the same Message-ID)."
    ),
    "email_queued_again": N_("Email '%(template)s' (#%(id)s) queued again"),
    "email_not_sent": N_("Not sent: %(why)s"),
    "email_not_made": N_("Not sent: it could not be made (%(error)s)"),
    "because_choice_ended": N_("the patient's choice ended: %(why)s"),
    "because_request_ended": N_("the request ended because %(why)s."),
    "no_longer_offered": N_("the request is no longer offered to this clinic (%(status)s)."),
    # What the mail server said, as the sender classes it (`leads.messaging.email.smtp_send`); its
    # answer quoted as it gave it (`verbatim`).
    "mail_answered": N_("The mail server answered: %(answer)s"),
    "mail_bounced": N_("Bounced: the address was refused for good. The mail server answered: %(answer)s"),
    "mail_message_refused": N_(
        "Refused for good: the message, not the address. The mail server answered: %(answer)s"
    ),
    "mail_refused": N_("Refused for good. The mail server answered: %(answer)s"),
    "mail_temporary": N_("Refused for now (temporary). The mail server answered: %(answer)s"),
    "mail_sender_refused": N_(
        "Our sender address was refused: check MAIL_FROM. The mail server answered: %(answer)s"
    ),
    "mail_needs_sign_in": N_(
        "The mail server wants STARTTLS or a sign-in first: check SMTP_TLS, SMTP_USERNAME and "
        "SMTP_PASSWORD. The mail server answered: %(answer)s"
    ),
    "mail_policy_refused": N_(
        "The mail server will not take mail from us: check SMTP_HOST, SMTP_USERNAME and MAIL_FROM. "
        "The mail server answered: %(answer)s"
    ),
    "mail_sign_in_refused": N_(
        "The mail server refused our sign-in: check SMTP_USERNAME and SMTP_PASSWORD. The mail server "
        "answered: %(answer)s"
    ),
    "mail_unreachable": N_("The mail server could not be reached, or the connection failed: %(error)s"),
    "mail_gave_up": _mail_gave_up,
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


def _described(text: str | None, data: dict | None) -> str:
    return (words(data) if data else None) or text or ""


def describe_event(note: str | None, note_data: dict | None) -> Markup:
    """A history entry's note in the reader's language, for a page (`as_html`): the system's words
    from its data, a person's words (and an entry written before notes had data) as stored."""
    return as_html(_described(note, note_data))


def describe_problem(last_error: str | None, last_error_data: dict | None) -> Markup:
    """Why an email was not sent or not delivered, in the reader's language, for a page: the
    system's words from its data around the mail server's answer, quoted as it gave it; a row
    written before the data (migration 0021r) shows its text as stored."""
    return as_html(_described(last_error, last_error_data))


# The status reasons releases before migration 0018n stored as their English text, marked for the
# catalogs: still translated when shown. Any other text is a person's, shown as typed.
FIXED_BEFORE = frozenset(
    {*SHARING_REFUSALS, SAID["investigational_reason"], SAID["none_suitable"], SAID["erased"]}
)


def describe_reason(stored: str) -> Markup:
    """A lead's status reason in the reader's language, for a page: the system's from its data, a
    fixed reason of earlier days translated (FIXED_BEFORE), a person's as typed."""
    try:
        data = json.loads(stored) if stored.startswith("{") else None
    except ValueError:
        data = None
    if data is None:
        return as_html(gettext(stored) if stored in FIXED_BEFORE else stored)
    return as_html(words(data) or stored)

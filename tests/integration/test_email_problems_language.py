"""Why an email was not sent or not delivered, on the lead page in the reader's language: the
system's reasons are stored as what they say (`EmailMessage.last_error_data`, `leads.notes`) and
worded when shown; a mail server's answer stays its own words, quoted as code, left to right,
inside the reader's sentence; emails stopped before keep showing the English they hold."""

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging.email import deliver_email, queue_email
from leads.models import AddressBounce, EmailMessage, Lead, LeadEvent, Role
from leads.notes import Note, as_html, verbatim
from leads.patients import privacy
from leads.staff import lead_actions
from leads.timeutil import utcnow
from leads.workflow import CLOSED_REFUSAL
from tests.factories import EmailMessageFactory, LeadFactory, ProviderFactory
from tests.helpers import read_bracketed
from tests.staff_support import signed_in_client

# The lead page and the sender run on either database.
pytestmark = pytest.mark.pg

BOUNCE = "550 5.1.1 <gone@example.org>: user unknown"
BUSY = "451 4.3.0 Try again later"
QUOTED = '<bdi dir="ltr"><code>{}</code></bdi>'


def _problems(client, lead: Lead) -> dict[str, str]:
    """Each email's problem on the lead page, by its address: as the page's HTML has it."""
    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    section = re.search(r'<section aria-labelledby="emails-title".*?</section>', page, re.S)[0]
    rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>(.*?)</tr>", section, re.S)
    shown = {}
    for address, rest in rows:
        problem = re.search(r'<span class="error-text">(.*?)</span>', rest, re.S)
        shown[html.unescape(address)] = problem[1] if problem else ""
    return shown


def _notes(client, lead: Lead) -> list[str]:
    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    return re.findall(r'<p class="note"[^>]*>(.*?)</p>', page, re.S)


def _queued(lead: Lead, to: str, key: str, **changes) -> EmailMessage:
    email_id = queue_email(
        template="test_message", to=to, idempotency_key=key, sent_at=utcnow(), lead_id=lead.id
    )
    email = db.session.get(EmailMessage, email_id)
    for name, value in changes.items():
        setattr(email, name, value)
    db.session.commit()
    return email


def _stopped_emails(app, mail_sink) -> tuple[Lead, object]:
    """A lead whose provider email a coordinator's closing cancelled, and whose emails to the
    patient bounced, were refused for now, and were given up after one attempt; and the client of
    that coordinator, who reads Danish."""
    client, user = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="routed")
    db.session.flush()
    EmailMessageFactory(lead_id=lead.id, to_address="clinic@example.dk", status="queued")
    mail_sink.refuse.update({"gone@example.org": BOUNCE, "busy@example.org": BUSY, "late@example.org": BUSY})
    bounced = _queued(lead, "gone@example.org", "bounce")
    busy = _queued(lead, "busy@example.org", "busy")
    late = _queued(lead, "late@example.org", "late", created_at=utcnow() - timedelta(days=6))
    assert [deliver_email(email.id) for email in (bounced, busy, late)] == ["failed", "queued", "failed"]
    lead_actions.change_status(lead.id, user.id, "closed_lost")
    db.session.commit()
    return lead, client


def test_a_danish_coordinator_reads_why_each_email_stopped_through_the_catalogs(
    app, taxonomy, mail_sink, monkeypatch
):
    """Every sentence around the server's answer comes from the catalogs (⟦…⟧); the answer is
    the server's own, as code in <bdi dir="ltr">, in the email's row and in the history alike."""
    lead, client = _stopped_emails(app, mail_sink)
    read_bracketed(monkeypatch, "da")

    bounce, busy = (QUOTED.format(html.escape(answer, quote=False)) for answer in (BOUNCE, BUSY))
    bounced = f"⟦Bounced: the address was refused for good. The mail server answered: {bounce}⟧"
    for_now = f"⟦Refused for now (temporary). The mail server answered: {busy}⟧"
    assert _problems(client, lead) == {
        "clinic@example.dk": f"⟦Not sent: ⟦{CLOSED_REFUSAL}⟧⟧",
        "gone@example.org": bounced,
        "busy@example.org": for_now,
        "late@example.org": f"⟦Gave up after 1 attempt; the last one: {for_now}⟧",
    }
    failed = [note for note in _notes(client, lead) if "test_message" in note]
    assert sorted(failed) == sorted(
        [
            f"⟦Email &#39;test_message&#39; could not be delivered: {bounced}⟧",
            f"⟦Email &#39;test_message&#39; could not be delivered: ⟦Gave up after 1 attempt; the last one: "
            f"{for_now}⟧⟧",
        ]
    )


def test_a_danish_coordinator_reads_a_cancellation_and_the_servers_answer_in_danish(app, taxonomy, mail_sink):
    """In the Danish catalog's words, the server's answer as it gave it (needs the catalog to hold
    these texts)."""
    lead, client = _stopped_emails(app, mail_sink)

    bounce, busy = (QUOTED.format(html.escape(answer, quote=False)) for answer in (BOUNCE, BUSY))
    for_now = f"Afvist indtil videre (midlertidigt). Mailserveren svarede: {busy}"
    bounced = f"Returneret (bounce): adressen blev afvist endegyldigt. Mailserveren svarede: {bounce}"
    assert _problems(client, lead) == {
        "clinic@example.dk": "Ikke sendt: Forespørgslen er lukket, så den er ikke længere tilgængelig.",
        "gone@example.org": bounced,
        "busy@example.org": for_now,
        "late@example.org": f"Opgivet efter 1 forsøg; det sidste: {for_now}",
    }


def test_emails_stopped_before_their_reasons_had_data_show_the_english_they_hold(app, taxonomy, monkeypatch):
    """Rows written before the upgrade keep their text: a cancellation's English sentence, a
    server's answer as it was stored."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="withdrawn")
    db.session.flush()
    EmailMessageFactory(
        lead_id=lead.id, to_address="a@example.dk", status="cancelled",
        last_error="Not sent: the patient withdrew consent.",
    )  # fmt: skip
    EmailMessageFactory(
        lead_id=lead.id, to_address="b@example.dk", status="failed", last_error="550 5.1.1 No such user"
    )
    db.session.commit()

    assert _problems(client, lead) == {
        "a@example.dk": "Not sent: the patient withdrew consent.",
        "b@example.dk": "550 5.1.1 No such user",
    }


def test_each_refusal_is_stored_as_the_senders_class_of_it_around_the_servers_answer(app, mail_sink):
    """What the sender makes of each answer (bounce, refused for good, for now, a setting of ours)
    is kept as its note, the answer inside it as given; the row's English text is as before."""
    lead = LeadFactory()
    db.session.commit()
    cases = {
        "gone@example.org": ("550 5.1.1 No such user", "mail_bounced"),
        "relay@example.org": ("550 5.7.1 Relaying denied", "mail_policy_refused"),
        "busy@example.org": ("452 4.2.2 Mailbox full", "mail_temporary"),
        "tls@example.org": ("530 5.7.0 Must issue a STARTTLS command first", "mail_needs_sign_in"),
    }
    mail_sink.refuse.update({address: answer for address, (answer, _) in cases.items()})
    for address, (answer, said) in cases.items():
        email = _queued(lead, address, address)
        deliver_email(email.id)
        db.session.refresh(email)
        assert email.last_error.startswith(answer)
        assert email.last_error_data == {"what": said, "answer": {"what": "verbatim", "text": answer}}
    mail_sink.refuse.clear()
    mail_sink.answer_data = "554 5.6.0 Message content rejected"
    email = _queued(lead, "fine@example.org", "data")
    assert deliver_email(email.id) == "failed"
    db.session.refresh(email)
    assert email.last_error == "message refused: 554 5.6.0 Message content rejected"
    assert email.last_error_data["what"] == "mail_message_refused"


def test_a_sent_email_keeps_no_earlier_refusal_and_an_erasure_leaves_none_of_the_answer(
    app, taxonomy, mail_sink
):
    """The answer quoting the patient's address goes with the email's other words: sent at last, or
    erased with the patient's data."""
    lead = LeadFactory(email="gone@example.org")
    db.session.commit()
    mail_sink.refuse["gone@example.org"] = BUSY
    retried = _queued(lead, "gone@example.org", "retried")
    assert deliver_email(retried.id) == "queued"
    mail_sink.refuse["gone@example.org"] = BOUNCE
    failed = _queued(lead, "gone@example.org", "failed")
    assert deliver_email(failed.id) == "failed"
    db.session.refresh(retried)
    assert retried.last_error_data is not None
    mail_sink.refuse.clear()
    retried.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert deliver_email(retried.id) == "sent"
    db.session.refresh(retried)
    assert (retried.last_error, retried.last_error_data) == (None, None)

    privacy.erase_patient(lead.reference, user_id=None, door=privacy.COMMAND_LINE)
    db.session.expire_all()
    erased = db.session.get(EmailMessage, failed.id)
    assert (erased.last_error, erased.last_error_data) == (None, None)
    notes = db.session.execute(
        sa.select(LeadEvent.note, LeadEvent.note_data).filter_by(lead_id=lead.id)
    ).all()
    assert "gone@example.org" not in repr(notes)


def test_a_quoted_answer_is_escaped_and_keeps_no_direction_marks_of_its_own(app):
    """The answer is the server's, never markup; a stray isolate in it cannot close the quote."""
    note = Note("mail_answered", answer=verbatim("550 <b>no</b>\u2069\u2066 user"))
    assert note.english == "The mail server answered: \u2066550 <b>no</b> user\u2069"
    assert as_html(note.english) == (
        'The mail server answered: <bdi dir="ltr"><code>550 &lt;b&gt;no&lt;/b&gt; user</code></bdi>'
    )
    assert as_html("a person's <i>note</i>") == "a person&#39;s &lt;i&gt;note&lt;/i&gt;"


def test_a_flagged_addresss_last_refusal_is_quoted_as_the_server_gave_it(app, taxonomy, monkeypatch):
    """The directory page's sentence about a refusing address holds the answer as code, left to right."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.ADMIN, language="da")
    provider = ProviderFactory(notification_emails=["a@example.dk"])
    db.session.flush()
    db.session.add(
        AddressBounce(provider_id=provider.id, address="a@example.dk", answer="550 <a@example.dk>")
    )
    db.session.commit()

    page = client.get("/staff/admin/providers").get_data(as_text=True)
    assert 'answered "<bdi dir="ltr"><code>550 &lt;a@example.dk&gt;</code></bdi>"' in page


def test_an_email_a_coordinator_sends_again_is_said_so_in_the_readers_words(app, taxonomy, monkeypatch):
    """The history's note of a resend is the system's sentence from the catalogs, where its English
    f-string sat on every page; the English kept in `note` reads as before."""
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(status="routed")
    db.session.flush()
    failed = EmailMessageFactory(
        lead_id=lead.id, status="failed", attempts=1, last_error="550 5.1.1 No such user"
    )
    db.session.commit()
    assert client.post(f"/staff/leads/{lead.id}/emails/{failed.id}/resend").status_code == 302
    read_bracketed(monkeypatch, "da")

    assert _notes(client, lead) == [f"⟦Email &#39;provider_notification&#39; (#{failed.id}) queued again⟧"]
    stored = db.session.scalar(sa.select(LeadEvent.note).filter_by(lead_id=lead.id, kind="email_resent"))
    assert stored == f"Email 'provider_notification' (#{failed.id}) queued again"  # as it was written before


def test_an_assignment_status_without_a_label_still_words_a_cancellation(app):
    """The sender words the reason as it cancels the email: a status the labels lack reads as words,
    never an error in the middle of a send."""
    why = Note("no_longer_offered", status=Note("assignment_status", status="on_hold"))
    assert (
        Note("email_not_sent", why=why).english
        == "Not sent: the request is no longer offered to this clinic (On hold)."
    )

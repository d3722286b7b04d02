"""Email rendering and SMTP delivery against a real SMTP server (aiosmtpd)."""

import threading
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import smtp_connection
from leads.messaging.email import (
    ERASED_WHILE_SENT,
    deliver_email,
    due_email_ids,
    hard_bounced,
    queue_email,
    render_email,
)
from leads.models import EmailMessage, LeadEvent, OutboxMessage
from leads.patients import privacy
from leads.timeutil import utcnow
from tests.factories import LeadFactory
from tests.helpers import wait_until
from tests.servers import free_port

# Emails are claimed once by a guarded update, and due ones found by comparing times in SQL.
pytestmark = pytest.mark.pg


def _queue(to="patient@example.org", key="k1", **extra):
    email_id = queue_email(template="test_message", to=to, idempotency_key=key, sent_at=utcnow(), **extra)
    db.session.commit()
    return db.session.get(EmailMessage, email_id)


def _received(mail_sink):
    return [message_from_bytes(path.read_bytes(), policy=policy.default) for path in mail_sink.messages()]


def test_render_email_gives_subject_text_and_html_from_one_template_pair(app):
    rendered = render_email("test_message", sent_at=utcnow())
    assert rendered.subject == "Test message from the quote service"
    assert "delivered by a Celery worker" in rendered.text
    assert rendered.html.startswith("<!doctype html>") and "<p>" in rendered.html


def test_queue_email_is_idempotent_per_key_and_writes_one_outbox_task(app):
    first = _queue(key="same")
    second = _queue(key="same")
    assert first.id == second.id
    assert db.session.scalar(sa.select(sa.func.count(EmailMessage.id))) == 1
    tasks = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [(t.task_name, t.payload) for t in tasks] == [("workers.send_emails", {"email_ids": [first.id]})]


def test_deliver_sends_once_with_a_stable_message_id_and_both_parts(app, mail_sink):
    email = _queue()
    assert deliver_email(email.id) == "sent"
    assert deliver_email(email.id) == "skipped"
    [message] = _received(mail_sink)
    assert message["Message-ID"] == email.message_id
    assert message["To"] == "patient@example.org"
    assert message.get_body(("plain",)).get_content().startswith("This is a test message")
    assert message.get_body(("html",)) is not None
    db.session.refresh(email)
    assert (email.status, email.attempts, email.sent_at is not None) == ("sent", 1, True)


def test_a_permanent_refusal_marks_the_email_failed_and_tells_the_coordinators(app, mail_sink, taxonomy):
    lead = LeadFactory()
    mail_sink.refuse["gone@example.org"] = "550 5.1.1 No such user"
    email = _queue(to="gone@example.org", lead_id=lead.id)
    assert deliver_email(email.id) == "failed"
    db.session.refresh(email)
    assert "550" in email.last_error and email.attempts == 1
    event = db.session.scalar(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="email_failed"))
    assert event is not None and "550" in event.note
    assert _received(mail_sink) == []


@pytest.mark.parametrize(
    ("refusal", "outcome", "recorded"),
    [
        # Our relay will not relay for us, or refuses our sender address: settings to fix, kept.
        (
            {"refuse": {"gone@example.org": "550 5.7.1 Relaying denied"}},
            "queued",
            "550 5.7.1 Relaying denied",
        ),
        ({"answer_mail": "553 5.7.1 Sender address rejected"}, "queued", "sender address refused: 553"),
        # A sender refused for a while (greylisting) is tried again like any 4xx, not blamed on MAIL_FROM.
        ({"answer_mail": "451 4.7.1 Greylisted, try again"}, "queued", "451 4.7.1 Greylisted, try again"),
        # Our domain's policy refused at DATA (DMARC): a setting of ours, kept.
        ({"answer_data": "550 5.7.26 Unauthenticated email (DMARC)"}, "queued", "550 5.7.26"),
        # The message itself refused: it fails, but the recipient's address did not bounce.
        ({"answer_data": "554 5.6.0 Message content rejected"}, "failed", "message refused: 554"),
    ],
)
def test_a_refusal_that_is_not_the_recipients_address_never_counts_as_a_bounce(
    app, mail_sink, refusal, outcome, recorded
):
    for name, value in refusal.items():
        setattr(mail_sink, name, value)
    email = _queue(to="gone@example.org")
    assert deliver_email(email.id) == outcome
    db.session.refresh(email)
    assert email.last_error.startswith(recorded) or recorded in email.last_error
    assert email.attempts == 1 and not hard_bounced(email)
    assert ("sender address refused" in email.last_error) == ("sender address refused" in recorded)
    assert _received(mail_sink) == []


def test_a_recipients_refusal_is_a_bounce(app, mail_sink):
    mail_sink.refuse["gone@example.org"] = "550 5.1.1 No such user"
    email = _queue(to="gone@example.org")
    assert deliver_email(email.id) == "failed"
    db.session.refresh(email)
    assert hard_bounced(email)


def test_a_temporary_refusal_is_retried_later_from_the_database(app, mail_sink):
    mail_sink.refuse["busy@example.org"] = "451 4.3.0 Try again later"
    email = _queue(to="busy@example.org")
    before = utcnow()
    assert deliver_email(email.id) == "queued"
    db.session.refresh(email)
    assert email.attempts == 1 and "451" in email.last_error
    assert email.next_attempt_at > before
    # Not due yet: a redelivered task does nothing.
    assert deliver_email(email.id) == "skipped"
    mail_sink.refuse.clear()
    email.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert email.id in due_email_ids()
    assert deliver_email(email.id) == "sent"
    assert len(_received(mail_sink)) == 1


def test_connection_refused_is_transient(app):
    app.config["SMTP_PORT"] = free_port()
    email = _queue()
    assert deliver_email(email.id) == "queued"
    db.session.refresh(email)
    assert "ConnectionRefusedError" in email.last_error


@pytest.mark.parametrize(
    ("attempts_before", "stored"), [(0, "gave up after 1 attempt: "), (1, "gave up after 2 attempts: ")]
)
def test_an_email_still_failing_at_the_horizon_is_given_up(app, mail_sink, attempts_before, stored):
    mail_sink.refuse["busy@example.org"] = "421 4.7.0 Busy"
    email = _queue(to="busy@example.org")
    email.created_at = utcnow() - timedelta(days=6)
    email.attempts, email.next_attempt_at = attempts_before, utcnow()  # a retry now due
    db.session.commit()
    assert deliver_email(email.id) == "failed"
    db.session.refresh(email)
    assert email.last_error.startswith(stored)  # the stored English, in good English


def test_a_claim_left_by_a_dead_worker_is_taken_back(app):
    email = _queue()
    email.status, email.claimed_at = "sending", utcnow() - timedelta(hours=1)
    db.session.commit()
    assert email.id in due_email_ids()
    db.session.refresh(email)
    assert email.status == "queued"


def test_a_dead_workers_claim_is_taken_back_once_and_a_live_one_never(app, taxonomy):
    """Whether the email may arrive twice is said when it goes again (test_email_arrived_twice)."""
    lead = LeadFactory()
    db.session.flush()
    email = _queue(lead_id=lead.id)
    email.status, email.claimed_at, email.attempts = "sending", utcnow() - timedelta(hours=1), 1
    live = _queue(to="live@example.org", key="k2", lead_id=lead.id)  # claimed a moment ago: its worker lives
    live.status, live.claimed_at, live.attempts = "sending", utcnow(), 1
    db.session.commit()
    assert deliver_email(email.id) == "skipped"  # a redelivered task never takes another's claim

    assert due_email_ids() == [email.id]
    assert due_email_ids() == [email.id]  # still due; the second sweep finds no claim to take back
    assert db.session.scalars(sa.select(LeadEvent.kind).filter_by(lead_id=lead.id)).all() == []
    assert deliver_email(email.id) == "sent"
    db.session.refresh(email)
    db.session.refresh(live)
    assert (email.attempts, live.status) == (2, "sending")


def test_a_claim_left_by_a_dead_worker_on_an_email_erased_meanwhile_fails_instead_of_going_out_blank(
    app, taxonomy
):
    lead = LeadFactory(email="patient@example.org")
    db.session.flush()
    email = _queue(lead_id=lead.id)
    email.status, email.claimed_at, email.attempts = "sending", utcnow() - timedelta(hours=1), 1
    privacy.anonymise(lead)  # the patient's data erased while the worker held the claim
    db.session.commit()

    assert email.id not in due_email_ids()

    db.session.refresh(email)
    assert (email.status, email.claimed_at, email.to_address, email.body_text) == ("failed", None, "", "")
    assert email.last_error == ERASED_WHILE_SENT
    kinds = db.session.scalars(sa.select(LeadEvent.kind).filter_by(lead_id=lead.id)).all()
    assert "email_resent" not in kinds and "email_failed" in kinds
    assert email.id not in due_email_ids()


def test_header_injection_through_the_subject_context_is_impossible(app):
    rendered = render_email("test_message", sent_at=utcnow())
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_a_message_the_server_may_have_kept_is_never_sent_again_on_the_spot(app, mail_sink):
    """The worker reuses its SMTP connection; when the server drops it after taking the message,
    the email waits for its retry (an attempt counted) instead of going out again at once."""
    first, second = _queue(key="first"), _queue(key="second")
    assert deliver_email(first.id) == "sent"  # the connection stays open for the next message
    mail_sink.drop_before_answer = True
    try:
        assert deliver_email(second.id) == "queued"
    finally:
        mail_sink.drop_before_answer = False
    db.session.refresh(second)
    assert second.attempts == 1 and second.next_attempt_at is not None
    assert len(mail_sink.messages()) == 2


def test_a_conversation_is_ended_before_its_claim_lapses_however_long_each_wait_may_be(app, mail_sink):
    """A server that takes longer over RCPT than the claim leaves (here SMTP_TIMEOUT alone would
    wait for it): the conversation is ended at the time its claim allows, before the sweep could
    take the claim back and give the email to another worker, and its outcome is recorded while the
    claim still holds: nothing was offered, so it is tried again later."""
    app.config.update(EMAIL_CLAIM_TIMEOUT_SECONDS=4, SMTP_TIMEOUT=60)
    email = _queue(to="slow@example.org")
    mail_sink.delay["slow@example.org"] = 8

    assert deliver_email(email.id) == "queued"

    db.session.refresh(email)
    assert (email.status, email.claimed_at, email.attempts) == ("queued", None, 1)
    assert "ended at the time its claim allows" in email.last_error
    assert mail_sink.messages() == []


def test_an_address_in_unicode_is_delivered_with_smtputf8(app, mail_sink):
    email = _queue(to="jørgen@eksempel.dk")
    assert deliver_email(email.id) == "sent"
    [message] = _received(mail_sink)
    assert message["To"] == "jørgen@eksempel.dk"
    assert message.get_body(("plain",)).get_content().startswith("This is a test message")


def test_a_connection_left_idle_is_closed_politely(app, mail_sink, monkeypatch):
    """The connection kept for the next message is not left open until the server drops it: QUIT
    once it has been idle for SMTP_IDLE_SECONDS; the next message opens a new one."""
    monkeypatch.setattr(smtp_connection, "SMTP_IDLE_SECONDS", 0.5)
    monkeypatch.setattr(smtp_connection, "_this_thread", threading.local())  # no connection kept yet
    first, second = _queue(key="first"), _queue(key="second")
    assert deliver_email(first.id) == "sent"
    quits = mail_sink.quits
    wait_until(lambda: mail_sink.quits > quits, timeout=5)
    assert deliver_email(second.id) == "sent"
    assert len(mail_sink.messages()) == 2

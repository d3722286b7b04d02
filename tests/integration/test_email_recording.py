"""Recording a delivery must not fail quietly: the attempt counts before the server is reached,
and a commit lost after the server's 250 is retried instead of sending the email again later."""

import logging
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import email as email_module
from leads.messaging.email import (
    MAY_HAVE_ARRIVED_TWICE,
    PermanentSmtpError,
    TransientSmtpError,
    deliver_email,
    deliver_emails,
    due_email_ids,
    queue_email,
)
from leads.models import EmailMessage, Lead, LeadEvent
from leads.patients import privacy
from leads.timeutil import utcnow
from tests.factories import LeadFactory

# Faults are injected on the real COMMIT, which a test transaction would turn into a savepoint release;
# a claim is compared by its stored time, which each database keeps its own way.
pytestmark = [pytest.mark.commits, pytest.mark.pg]


def _queued(**extra):
    email_id = queue_email(
        template="test_message", to="patient@example.org", idempotency_key="k", sent_at=utcnow(), **extra
    )
    db.session.commit()
    return email_id


def test_a_commit_lost_after_the_server_accepted_is_retried_and_the_email_goes_once(
    app, mail_sink, monkeypatch
):
    email_id = _queued()
    sent = {"yes": False}
    real_send = email_module.smtp_send

    def send_then_arm(message, conversation=None):
        real_send(message, conversation)
        sent["yes"] = True

    failures = []

    def lose_the_first_commit_after_sending(conn):
        if sent["yes"] and not failures:
            failures.append(1)
            raise sa.exc.OperationalError("COMMIT", {}, Exception("database is locked"))

    monkeypatch.setattr(email_module, "smtp_send", send_then_arm)
    monkeypatch.setattr(email_module.time, "sleep", lambda seconds: None)
    sa.event.listen(db.engine, "commit", lose_the_first_commit_after_sending)
    try:
        assert deliver_email(email_id) == "sent"
    finally:
        sa.event.remove(db.engine, "commit", lose_the_first_commit_after_sending)

    assert failures == [1]
    db.session.expire_all()
    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts, email.claimed_at) == ("sent", 1, None)
    assert len(mail_sink.messages()) == 1
    assert deliver_email(email_id) == "skipped"


def test_the_attempt_counts_before_the_server_is_reached(app, mail_sink, monkeypatch):
    email_id = _queued()

    def crash(message, conversation=None):
        raise SystemExit("worker killed mid-send")

    monkeypatch.setattr(email_module, "smtp_send", crash)
    with pytest.raises(SystemExit):
        deliver_email(email_id)

    db.session.rollback()
    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts) == ("sending", 1)


def test_a_message_whose_data_mark_cannot_be_committed_is_not_offered(app, mail_sink, monkeypatch):
    """The sender commits its mark right before DATA; when that commit fails, DATA does not go
    (else a worker dying next would leave a copy nobody knows of), and the email is tried later."""
    email_id = _queued()
    commits = []

    def lose_the_mark(conn):  # the claim's commit, then the mark's
        commits.append(1)
        if len(commits) == 2:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("database is locked"))

    sa.event.listen(db.engine, "commit", lose_the_mark)
    try:
        assert deliver_email(email_id) == "queued"
    finally:
        sa.event.remove(db.engine, "commit", lose_the_mark)

    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts, email.data_sent_at) == ("queued", 1, None)
    assert (
        email.last_error
        == "not offered to the server: the database could not note that it goes (OperationalError)"
    )
    assert mail_sink.messages() == []


@pytest.mark.parametrize("late_answer", [None, "451 4.3.0 Try again later"])
def test_an_answer_that_comes_after_the_claim_lapsed_leaves_the_email_to_the_sender_holding_it(
    app, mail_sink, monkeypatch, caplog, late_answer
):
    """A conversation outlasts the claim (its sender's clock behind the sweeper's): meanwhile beat
    takes the claim back and another worker sends the email. The first worker's late answer (a 4xx)
    writes nothing; one that only then reaches DATA finds its claim gone and does not send the
    message at all, so it arrives once."""
    email_id = _queued()
    real_send = email_module.smtp_send
    other_worker: list[dict] = []

    def meanwhile() -> None:
        lapsed = utcnow() - timedelta(seconds=app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] + 1)
        with app.app_context():
            db.session.execute(
                sa.update(EmailMessage).where(EmailMessage.id == email_id).values(claimed_at=lapsed)
            )
            db.session.commit()
            assert email_id in due_email_ids()
            other_worker.append(deliver_emails([email_id]))
            db.session.remove()

    def slow_conversation(message, conversation=None):
        if threading.current_thread() is not threading.main_thread():
            return real_send(message, conversation)
        thread = threading.Thread(target=meanwhile)
        thread.start()
        thread.join(timeout=30)
        if late_answer:
            raise TransientSmtpError(late_answer)
        real_send(message, conversation)

    monkeypatch.setattr(email_module, "smtp_send", slow_conversation)
    with caplog.at_level(logging.INFO, logger=email_module.__name__):
        assert deliver_email(email_id) == "skipped"

    assert other_worker == [{email_id: "sent"}]
    db.session.expire_all()
    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts, email.claimed_at, email.last_error) == ("sent", 2, None, None)
    assert len(mail_sink.messages()) == 1
    assert "claim lapsed" in caplog.text and "patient@example.org" not in caplog.text


# Longer than the earlier recording's six tries (about 6 s with their pauses), well within the claim.
OUTAGE_SECONDS = 8


def test_a_database_outage_after_the_server_accepted_is_waited_out_while_the_claim_holds(
    app, mail_sink, monkeypatch, database_outage
):
    app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] = 60
    email_id = _queued()
    real_send = email_module.smtp_send
    outages = []

    def accepted_then_the_database_goes(message, conversation=None):
        real_send(message, conversation)
        outages.append(database_outage(OUTAGE_SECONDS))

    monkeypatch.setattr(email_module, "smtp_send", accepted_then_the_database_goes)
    assert deliver_email(email_id) == "sent"
    assert not outages[0].is_alive()  # recorded once the database was back

    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts, email.claimed_at) == ("sent", 1, None)
    app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] = 0
    assert email_id not in due_email_ids()  # nothing for the sweep to send again
    assert len(mail_sink.messages()) == 1


def test_an_outage_that_outlasts_the_claim_leaves_the_email_to_the_sweep_with_the_lead_told(
    app, mail_sink, monkeypatch, database_outage, taxonomy
):
    """The recording gives up before the claim lapses: once it has, the sweep sends the email
    again (the one duplicate left, with the same Message-ID) and the lead's history says so."""
    claim_timeout = 4
    # A whole conversation fits in the claim less its margin (config.check_conversation_fits_claim).
    app.config.update(EMAIL_CLAIM_TIMEOUT_SECONDS=claim_timeout, SMTP_TIMEOUT=0.2)
    lead = LeadFactory()
    db.session.commit()
    email_id = _queued(lead_id=lead.id)
    real_send = email_module.smtp_send
    outages = []

    def accepted_then_the_database_goes(message, conversation=None):
        real_send(message, conversation)
        outages.append(database_outage(claim_timeout + 1))

    monkeypatch.setattr(email_module, "smtp_send", accepted_then_the_database_goes)
    with pytest.raises(sa.exc.OperationalError):
        deliver_email(email_id)
    assert outages[0].is_alive()  # given up while the database was still away
    outages[0].join()

    db.session.rollback()
    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts) == ("sending", 1)
    assert email.claimed_at + timedelta(seconds=claim_timeout) <= utcnow()
    assert email_id in due_email_ids()
    monkeypatch.setattr(email_module, "smtp_send", real_send)
    assert deliver_email(email_id) == "sent"
    assert len(mail_sink.messages()) == 2
    twice = db.session.scalars(
        sa.select(LeadEvent).filter_by(lead_id=lead.id, kind=MAY_HAVE_ARRIVED_TWICE)
    ).all()
    assert len(twice) == 1


@pytest.mark.parametrize(
    "answer",
    [
        PermanentSmtpError("550 5.1.1 <patient@example.org>: Recipient address rejected"),
        TransientSmtpError("452 4.2.2 <patient@example.org>: Mailbox full"),
    ],
)
def test_the_servers_answer_after_the_patient_was_erased_mid_send_keeps_nothing_of_them(
    app, mail_sink, monkeypatch, taxonomy, answer
):
    """The patient's data is erased while the server is asked about an email to them: its answer,
    which quotes their address, is stored nowhere, and an email with no words or address left is
    not tried again."""
    lead = LeadFactory(email="patient@example.org")
    db.session.commit()
    email_id, lead_id, reference = _queued(lead_id=lead.id), lead.id, lead.reference

    def erased_meanwhile(message, conversation=None):
        def erase() -> None:
            with app.app_context():
                privacy.erase_patient(reference, user_id=None, door=privacy.COMMAND_LINE)
                db.session.remove()

        thread = threading.Thread(target=erase)
        thread.start()
        thread.join(timeout=30)
        raise answer

    monkeypatch.setattr(email_module, "smtp_send", erased_meanwhile)
    deliver_email(email_id)

    db.session.expire_all()
    email = db.session.get(EmailMessage, email_id)
    notes = db.session.scalars(sa.select(LeadEvent.note).where(LeadEvent.lead_id == lead_id)).all()
    assert db.session.get(Lead, lead_id).anonymised_at is not None
    assert "patient@example.org" not in f"{email.to_address} {email.last_error} {notes}"
    assert email.status == "failed" and email_id not in due_email_ids()

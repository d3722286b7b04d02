"""An email may have arrived twice only when an attempt handed it to the mail server (DATA) and
was cut off before the server's answer was recorded, and a later attempt delivered it: then, and
only then, the lead's history says so and the stats page counts it. A claim taken back from a dead
worker says nothing by itself: its worker may have died before DATA, and the email may never go
again (cancelled)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import email as email_module
from leads.messaging.email import (
    MAY_HAVE_ARRIVED_TWICE,
    cancel_provider_emails,
    deliver_email,
    due_email_ids,
    queue_email,
)
from leads.models import Consent, EmailMessage, LeadEvent
from leads.staff import stats
from leads.staff.stats import Period
from leads.timeutil import utcnow
from tests.factories import AssignmentFactory, EmailMessageFactory, LeadFactory

# A sender's claim, its DATA mark and its record are transactions of their own.
pytestmark = [pytest.mark.commits, pytest.mark.pg]


class WorkerKilled(BaseException):
    """The worker process dies: nothing after it runs, nothing is recorded."""


def _killed(monkeypatch, moment: str) -> None:
    """The next send's worker dies `moment`: "before DATA" (MAIL and RCPT answered, the message not
    yet offered), or "after the 250" (the server kept the message; the record never comes)."""
    real_send = email_module.smtp_send

    def die(message, conversation=None):
        if moment == "before DATA":
            conversation.before_data = _die
            real_send(message, conversation)
        else:
            real_send(message, conversation)
            _die()

    monkeypatch.setattr(email_module, "smtp_send", die)


def _die():
    raise WorkerKilled()


def _send_and_die(monkeypatch, email_id: int, moment: str) -> None:
    with monkeypatch.context() as patched:
        _killed(patched, moment)
        with pytest.raises(WorkerKilled):
            deliver_email(email_id)
    db.session.rollback()
    assert db.session.get(EmailMessage, email_id).status == "sending"
    db.session.rollback()


def _taken_back_by_the_sweep(app, email_id: int) -> None:
    """The dead worker's claim lapses, and the due-email sweep takes it back."""
    lapsed = utcnow() - timedelta(seconds=app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] + 1)
    db.session.execute(sa.update(EmailMessage).where(EmailMessage.id == email_id).values(claimed_at=lapsed))
    db.session.commit()
    assert email_id in due_email_ids()


def _noted_twice(lead_id: int) -> int:
    count = db.session.scalar(
        sa.select(sa.func.count(LeadEvent.id)).filter_by(lead_id=lead_id, kind=MAY_HAVE_ARRIVED_TWICE)
    )
    today = utcnow().date()
    counted = stats.email_delivery(Period(today, today)).may_have_arrived_twice
    db.session.rollback()
    assert counted == count  # the stats page counts what the histories say
    return count


def _patients_email() -> tuple[int, int]:
    """A lead and an email to its patient: (lead id, email id)."""
    lead = LeadFactory()
    db.session.commit()
    email_id = queue_email(
        template="test_message",
        to="patient@example.org",
        idempotency_key="k",
        lead_id=lead.id,
        sent_at=utcnow(),
    )
    db.session.commit()
    return lead.id, email_id


def _message_ids(mail_sink) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for path in mail_sink.messages()
        for line in path.read_text().splitlines()
        if line.lower().startswith("message-id:")
    ]


def test_a_worker_killed_before_data_left_no_copy_so_the_delivery_after_it_is_not_counted_twice(
    app, taxonomy, mail_sink, monkeypatch
):
    lead_id, email_id = _patients_email()
    _send_and_die(monkeypatch, email_id, "before DATA")
    assert mail_sink.messages() == []

    _taken_back_by_the_sweep(app, email_id)
    assert _noted_twice(lead_id) == 0  # taking a claim back says nothing by itself
    assert deliver_email(email_id) == "sent"

    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts, email.data_sent_at) == ("sent", 2, None)
    assert len(mail_sink.messages()) == 1
    assert _noted_twice(lead_id) == 0


def test_a_worker_killed_after_the_server_kept_the_email_makes_the_delivery_after_it_noted_once(
    app, taxonomy, mail_sink, monkeypatch
):
    lead_id, email_id = _patients_email()
    _send_and_die(monkeypatch, email_id, "after the 250")
    assert db.session.get(EmailMessage, email_id).data_sent_at is not None  # marked before DATA
    db.session.rollback()

    _taken_back_by_the_sweep(app, email_id)
    assert _noted_twice(lead_id) == 0  # not yet: the email has not gone again
    assert deliver_email(email_id) == "sent"
    assert _noted_twice(lead_id) == 1

    assert due_email_ids() == [] and deliver_email(email_id) == "skipped"
    assert _noted_twice(lead_id) == 1
    message_id = db.session.get(EmailMessage, email_id).message_id
    assert _message_ids(mail_sink) == [message_id, message_id]
    [event] = db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead_id, kind=MAY_HAVE_ARRIVED_TWICE))
    assert "may have arrived twice" in event.note and "test_message" in event.note


@pytest.mark.parametrize("cancelled", ["while queued", "at its claim"])
def test_an_email_taken_back_from_a_dead_worker_and_then_cancelled_is_not_counted(
    app, taxonomy, mail_sink, monkeypatch, cancelled
):
    """A clinic's email, kept by the server as its worker died; the patient withdraws before it
    goes again: it is cancelled, either by the withdrawal itself or at the claim that finds it no
    longer shareable. It arrived once."""
    assignment = AssignmentFactory(status="notified")
    db.session.add(
        Consent(
            lead=assignment.lead, text_version="v1", share_with_providers=True, contact=True, source_form="t"
        )
    )
    db.session.flush()
    lead_id = assignment.lead_id
    email = EmailMessageFactory(lead_id=lead_id, idempotency_key=f"assign:{assignment.id}:clinic")
    db.session.commit()
    email_id = email.id
    _send_and_die(monkeypatch, email_id, "after the 250")
    _taken_back_by_the_sweep(app, email_id)

    if cancelled == "while queued":
        assert cancel_provider_emails(lead_id, "the patient withdrew.") == 1
    else:
        consent = db.session.scalar(sa.select(Consent).filter_by(lead_id=lead_id))
        consent.withdrawn_at = utcnow()
    db.session.commit()
    assert deliver_email(email_id) in ("cancelled", "skipped")

    assert db.session.get(EmailMessage, email_id).status == "cancelled"
    assert len(mail_sink.messages()) == 1
    assert _noted_twice(lead_id) == 0


def test_a_connection_dropped_after_the_message_makes_the_retry_that_delivers_it_noted_once(
    app, taxonomy, mail_sink
):
    """The server kept the message and the connection dropped before its 250: the sender records
    a failure to try again, and the retry's copy may be the second."""
    lead_id, email_id = _patients_email()
    mail_sink.drop_before_answer = True
    try:
        assert deliver_email(email_id) == "queued"
    finally:
        mail_sink.drop_before_answer = False
    assert db.session.get(EmailMessage, email_id).data_sent_at is not None
    db.session.execute(
        sa.update(EmailMessage).where(EmailMessage.id == email_id).values(next_attempt_at=utcnow())
    )
    db.session.commit()

    assert deliver_email(email_id) == "sent"
    assert len(mail_sink.messages()) == 2
    assert _noted_twice(lead_id) == 1


@pytest.mark.parametrize("refusal", ["451 4.3.0 Try again later", "not offered"])
def test_an_attempt_the_server_answered_or_that_never_offered_the_message_leaves_no_doubt(
    app, taxonomy, mail_sink, refusal
):
    """A 4xx answer to the message, or a conversation that ends before DATA (too little of its
    claim left): the retry that delivers it is the only copy."""
    lead_id, email_id = _patients_email()
    smtp_timeout = app.config["SMTP_TIMEOUT"]
    if refusal == "not offered":
        app.config["SMTP_TIMEOUT"] = app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"]  # no room for DATA's waits
    else:
        mail_sink.answer_data = refusal
    assert deliver_email(email_id) == "queued"
    email = db.session.get(EmailMessage, email_id)
    assert email.data_sent_at is None and mail_sink.messages() == []
    assert (refusal if refusal != "not offered" else "not offered to the server") in email.last_error
    app.config["SMTP_TIMEOUT"], mail_sink.answer_data = smtp_timeout, None
    email.next_attempt_at = utcnow()
    db.session.commit()

    assert deliver_email(email_id) == "sent"
    assert len(mail_sink.messages()) == 1
    assert _noted_twice(lead_id) == 0

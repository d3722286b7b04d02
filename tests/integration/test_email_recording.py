"""Recording a delivery must not fail quietly: the attempt counts before the server is reached,
and a commit lost after the server's 250 is retried instead of sending the email again later."""

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import email as email_module
from leads.messaging.email import deliver_email, queue_email
from leads.models import EmailMessage
from leads.timeutil import utcnow

# Faults are injected on the real COMMIT, which a test transaction would turn into a savepoint release.
pytestmark = pytest.mark.commits


def _queued():
    email_id = queue_email(
        template="test_message", to="patient@example.org", idempotency_key="k", sent_at=utcnow()
    )
    db.session.commit()
    return email_id


def test_a_commit_lost_after_the_server_accepted_is_retried_and_the_email_goes_once(
    app, mail_sink, monkeypatch
):
    email_id = _queued()
    sent = {"yes": False}
    real_send = email_module.smtp_send

    def send_then_arm(message):
        real_send(message)
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

    def crash(message):
        raise SystemExit("worker killed mid-send")

    monkeypatch.setattr(email_module, "smtp_send", crash)
    with pytest.raises(SystemExit):
        deliver_email(email_id)

    db.session.rollback()
    email = db.session.get(EmailMessage, email_id)
    assert (email.status, email.attempts) == ("sending", 1)

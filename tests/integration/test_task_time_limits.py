"""A send task interrupted at its soft time limit (Celery raises SoftTimeLimitExceeded in it)
leaves nothing stuck: the due-email sweep sends what it had not, each email once."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from leads.extensions import db
from leads.messaging import email as email_module
from leads.messaging.email import due_email_batches, queue_email
from leads.routing.bounces import deliver_and_handle_bounces
from leads.timeutil import utcnow


def _recipients(mail_sink) -> list[str]:
    return sorted(path.read_text().split("\nTo: ", 1)[1].split("\n", 1)[0] for path in mail_sink.messages())


def test_a_send_batch_cut_at_the_soft_time_limit_is_finished_by_the_sweep(app, mail_sink, monkeypatch):
    # The sweep's waits shortened to nothing: the claim of the interrupted send has lapsed at once.
    app.config.update(EMAIL_CLAIM_TIMEOUT_SECONDS=0, EMAIL_SAFETY_NET_SECONDS=0)
    email_ids = [
        queue_email(
            template="test_message",
            to=f"patient{n}@example.org",
            idempotency_key=f"soft-{n}",
            sent_at=utcnow(),
        )
        for n in range(3)
    ]
    db.session.commit()
    real_send, sent = email_module.smtp_send, []

    def out_of_time_after_the_first(message):
        if sent:
            raise SoftTimeLimitExceeded()
        real_send(message)
        sent.append(message)

    monkeypatch.setattr(email_module, "smtp_send", out_of_time_after_the_first)
    with pytest.raises(SoftTimeLimitExceeded):
        deliver_and_handle_bounces(email_ids)
    db.session.rollback()
    assert _recipients(mail_sink) == ["patient0@example.org"]

    monkeypatch.setattr(email_module, "smtp_send", real_send)
    for _task, batch in due_email_batches():
        deliver_and_handle_bounces(batch)
    assert _recipients(mail_sink) == ["patient0@example.org", "patient1@example.org", "patient2@example.org"]

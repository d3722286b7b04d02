"""A real Celery worker process delivers what the outbox publishes, exactly once."""

import sqlalchemy as sa
from flask import current_app

from leads.extensions import db
from leads.messaging import outbox
from leads.messaging.email import queue_email
from leads.models import EmailMessage
from leads.timeutil import utcnow
from tests.helpers import wait_until


def _status(email_id):
    status = db.session.scalar(sa.select(EmailMessage.status).filter_by(id=email_id))
    db.session.rollback()  # end the read: an open SQLite transaction would block the worker
    return status


def test_an_email_written_in_a_transaction_is_delivered_by_the_worker(app, celery_worker, mail_sink):
    email_id = queue_email(
        template="test_message", to="a@example.org", idempotency_key="w1", sent_at=utcnow()
    )
    db.session.commit()
    wait_until(lambda: _status(email_id) == "sent")
    assert len(mail_sink.messages()) == 1


def test_a_send_email_task_delivered_twice_sends_one_email(app, celery_worker, mail_sink):
    email_id = queue_email(
        template="test_message", to="b@example.org", idempotency_key="w2", sent_at=utcnow()
    )
    db.session.commit()
    celery_app = current_app.extensions["celery"]
    celery_app.send_task(outbox.SEND_EMAIL, kwargs={"email_id": email_id})
    celery_app.send_task(outbox.SEND_EMAIL, kwargs={"email_id": email_id})
    wait_until(lambda: _status(email_id) == "sent")
    # Give the duplicate deliveries time to run; they must not send again.
    marker_id = queue_email(
        template="test_message", to="marker@example.org", idempotency_key="w2m", sent_at=utcnow()
    )
    db.session.commit()
    wait_until(lambda: _status(marker_id) == "sent")
    recipients = sorted(p.read_text().split("To: ", 1)[1].split("\n", 1)[0] for p in mail_sink.messages())
    assert recipients == ["b@example.org", "marker@example.org"]


def test_a_message_written_while_redis_is_down_is_delivered_after_it_returns(
    app, celery_worker, mail_sink, redis_server
):
    redis_server.stop()
    email_id = queue_email(
        template="test_message", to="c@example.org", idempotency_key="w3", sent_at=utcnow()
    )
    db.session.commit()
    assert _status(email_id) == "queued"
    redis_server.start()
    # What beat does every few seconds: the sweep publishes what the fast path could not.
    assert outbox.publish_stale() == 1
    wait_until(lambda: _status(email_id) == "sent", timeout=60)
    assert len(mail_sink.messages()) == 1

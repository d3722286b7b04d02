"""Faults: a worker killed in the middle of sending loses nothing and sends nothing twice."""

import os
import signal
from datetime import timedelta

import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from leads.messaging.email import due_email_ids, queue_email
from leads.messaging.outbox import SEND_EMAIL
from leads.models import EmailMessage
from leads.timeutil import utcnow
from tests.helpers import wait_until
from tests.servers import Worker

# The test starts a worker process of its own, which must see the email row.
pytestmark = pytest.mark.commits

FAULT_REDIS_DB = 3  # apart from the shared worker's queue


def _claim_lapses(email_id: int, claim_timeout: float) -> None:
    """Time passes: the claim the killed worker left is as old as the claim timeout."""
    lapsed = utcnow() - timedelta(seconds=claim_timeout + 1)
    db.session.execute(
        sa.update(EmailMessage)
        .where(EmailMessage.id == email_id, EmailMessage.status == "sending")
        .values(claimed_at=lapsed)
    )
    db.session.commit()


def _email_status(email_id):
    status = db.session.scalar(sa.select(EmailMessage.status).filter_by(id=email_id))
    db.session.rollback()  # never hold the SQLite write lock while the worker needs it
    return status


def test_a_worker_killed_mid_send_loses_nothing_and_the_email_is_sent_once(
    app, mail_sink, redis_server, test_env, tmp_path
):
    env = {**test_env, "REDIS_URL": redis_server.url_for(FAULT_REDIS_DB)}
    worker = Worker(env, tmp_path / "worker.log", pool="prefork")
    worker.start()
    fault_app = create_app(config.TestingConfig, REDIS_URL=env["REDIS_URL"])
    try:
        # The mail server takes its time (within SMTP_TIMEOUT), so the worker is caught in the middle
        # of the conversation.
        mail_sink.delay["slow@example.org"] = 9
        with fault_app.app_context():
            email_id = queue_email(
                template="test_message", to="slow@example.org", idempotency_key="fault-1", sent_at=utcnow()
            )
            db.session.commit()
            message_id = db.session.get(EmailMessage, email_id).message_id
            wait_until(lambda: _email_status(email_id) == "sending")
            [child] = worker.child_pids()
            os.kill(child, signal.SIGKILL)
            mail_sink.delay.clear()

            # The task is redelivered at once (reject_on_worker_lost) but skips a claim that is not yet
            # stale; once it is, beat's dispatch_due_emails takes it back and the email goes out once.
            _claim_lapses(email_id, fault_app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"])
            due = due_email_ids()
            if _email_status(email_id) != "sent":
                assert email_id in due
                fault_app.extensions["celery"].send_task(SEND_EMAIL, kwargs={"email_id": email_id})
            wait_until(lambda: _email_status(email_id) == "sent", timeout=30)
        [stored] = mail_sink.messages()
        assert message_id in stored.read_text()
        assert "WorkerLostError" in worker.log_path.read_text() or "SIGKILL" in worker.log_path.read_text()
    finally:
        worker.stop()

"""A send task and its soft time limit (Celery raises SoftTimeLimitExceeded in it): a batch stops
claiming while a claim could still outlast the limit and hands the rest to a new task, so the
interruption finds no email in flight; and one interrupted all the same leaves nothing stuck: the
due-email sweep sends what it had not, each email once."""

import base64
import json

import pytest
import redis
import sqlalchemy as sa
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from leads.extensions import db
from leads.messaging import email as email_module
from leads.messaging import outbox
from leads.messaging.email import due_email_batches, queue_email
from leads.models import EmailMessage
from leads.routing.bounces import deliver_and_handle_bounces
from leads.timeutil import utcnow
from tests.helpers import wait_until
from tests.integration.test_email_batches import _queue_batch
from tests.servers import Worker
from workers import celery_settings, tasks


def _recipients(mail_sink) -> list[str]:
    return sorted(path.read_text().split("\nTo: ", 1)[1].split("\n", 1)[0] for path in mail_sink.messages())


def test_a_send_batch_cut_at_the_soft_time_limit_is_finished_by_the_sweep(app, mail_sink, monkeypatch):
    app.config["EMAIL_SAFETY_NET_SECONDS"] = 0  # the sweep sends what was never tried at once
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

    def out_of_time_after_the_first(message, conversation=None):
        if sent:
            raise SoftTimeLimitExceeded()
        real_send(message, conversation)
        sent.append(message)

    monkeypatch.setattr(email_module, "smtp_send", out_of_time_after_the_first)
    with pytest.raises(SoftTimeLimitExceeded):
        deliver_and_handle_bounces(email_ids)
    db.session.rollback()
    assert _recipients(mail_sink) == ["patient0@example.org"]

    monkeypatch.setattr(email_module, "smtp_send", real_send)
    # The sweep's wait shortened to nothing: the claim of the interrupted send has lapsed at once.
    claim_timeout, app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] = app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"], 0
    due = due_email_batches()
    app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] = claim_timeout
    for _task, batch in due:
        deliver_and_handle_bounces(batch)
    assert _recipients(mail_sink) == ["patient0@example.org", "patient1@example.org", "patient2@example.org"]


def _statuses(ids: list[int]) -> list[tuple[str, int]]:
    rows = db.session.execute(
        sa.select(EmailMessage.id, EmailMessage.status, EmailMessage.attempts).where(EmailMessage.id.in_(ids))
    ).all()
    db.session.rollback()  # end the read: an open SQLite transaction would block a worker
    found = {email_id: (status, attempts) for email_id, status, attempts in rows}
    return [found[email_id] for email_id in ids]


def _published_send_tasks(client: redis.Redis) -> list[tuple[str, dict]]:
    """The send tasks waiting in the email queue (every priority's list): (task name, kwargs)."""
    messages = [
        json.loads(raw) for key in client.keys(f"{outbox.EMAIL_QUEUE}*") for raw in client.lrange(key, 0, -1)
    ]
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[1]) for m in messages]


@pytest.mark.commits
@pytest.mark.pg
def test_a_batch_claims_no_email_whose_claim_could_outlast_the_soft_time_limit_and_hands_the_rest_on(
    app, mail_sink, redis_server
):
    """The task (run here as the worker runs it) may claim for the first 2 s only: its soft time
    limit is 60 s and a claim lasts 58. The server takes 3 s over the first email, so the other two
    go, unclaimed, to a new send task published at once, which sends them."""
    app.config.update(TASK_SOFT_TIME_LIMIT=60, EMAIL_CLAIM_TIMEOUT_SECONDS=58)
    ids = _queue_batch("first@example.org", "second@example.org", "third@example.org")
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()  # the task the outbox published for the batch: the test runs it itself
    mail_sink.delay["first@example.org"] = 3
    send_emails = tasks.send_emails  # this app's task

    assert send_emails.apply(kwargs={"email_ids": ids}).get() == {
        ids[0]: "sent",
        ids[1]: "handed_on",
        ids[2]: "handed_on",
    }
    assert _statuses(ids) == [("sent", 1), ("queued", 0), ("queued", 0)]
    assert _published_send_tasks(client) == [(outbox.SEND_EMAILS, {"email_ids": ids[1:]})]

    assert send_emails.apply(kwargs={"email_ids": ids[1:]}).get() == {ids[1]: "sent", ids[2]: "sent"}
    assert _statuses(ids) == [("sent", 1)] * 3
    assert len(mail_sink.messages()) == 3


@pytest.mark.commits
@pytest.mark.pg
def test_a_task_with_no_time_to_claim_one_email_leaves_its_batch_to_the_sweep_not_to_itself(
    app, mail_sink, redis_server
):
    """No time left for a first claim (here a claim as long as the soft time limit, which config.py
    refuses at start; in production a database that kept the first claim waiting): the task sends
    nothing and publishes no copy of itself, which would do the same again at once; the due-email
    sweep sends the batch after its safety net."""
    app.config.update(TASK_SOFT_TIME_LIMIT=60, EMAIL_CLAIM_TIMEOUT_SECONDS=60, EMAIL_SAFETY_NET_SECONDS=0)
    ids = _queue_batch("first@example.org", "second@example.org")
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()

    assert tasks.send_emails.apply(kwargs={"email_ids": ids}).get() == dict.fromkeys(ids, "left_to_sweep")
    assert _statuses(ids) == [("queued", 0)] * 2
    assert _published_send_tasks(client) == []
    assert due_email_batches() == [(outbox.SEND_EMAILS, ids)]


TIME_LIMIT_REDIS_DB = 6  # this test's worker only


@pytest.mark.commits
@pytest.mark.pg
def test_a_worker_at_its_soft_time_limit_finds_no_email_in_flight(
    app, mail_sink, test_env, redis_server, tmp_path
):
    """A real prefork worker whose send tasks are interrupted after 77 s, a claim lasting 75 s
    (which holds a whole conversation of 4 s waits), and a server that takes 2.5 s over each message:
    a task may claim for its first 2 s only, so a batch of three outlasts it. Each task stops
    claiming in time and hands the rest on, so the interruption never comes; every email goes once,
    on its first attempt, with no sweep needed to free a claim it left."""
    url = redis_server.url_for(TIME_LIMIT_REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    settings = {
        "TASK_SOFT_TIME_LIMIT": "77",
        "TASK_TIME_LIMIT": "85",
        "EMAIL_CLAIM_TIMEOUT_SECONDS": "75",
        "DATABASE_TASK_STATEMENT_TIMEOUT": "5",
        "SMTP_TIMEOUT": "4",
    }
    addresses = ("one@example.org", "two@example.org", "three@example.org")
    ids = _queue_batch(*addresses)
    for address in addresses:
        mail_sink.delay[address] = 2.5
    producer = Celery("time-limit-test")
    producer.config_from_object(celery_settings({**app.config, "REDIS_URL": url}))
    producer.send_task(outbox.SEND_EMAILS, kwargs={"email_ids": ids})
    producer.close()

    log = tmp_path / "worker.log"
    worker = Worker({**test_env, **settings, "REDIS_URL": url}, log, pool="prefork")
    worker.start()
    try:
        wait_until(lambda: _statuses(ids) == [("sent", 1)] * 3, timeout=90)
    finally:
        worker.stop()
    assert len(mail_sink.messages()) == 3
    assert "Soft time limit" not in log.read_text()


@pytest.mark.commits
@pytest.mark.pg
@pytest.mark.parametrize("given_by", ["the worker's --soft-time-limit", "the task's message"])
def test_a_send_task_stops_claiming_by_the_soft_time_limit_it_runs_under_not_the_setting(
    app, mail_sink, test_env, redis_server, tmp_path, given_by
):
    """TASK_SOFT_TIME_LIMIT says 82 s, but the worker is started with --soft-time-limit 77, or the
    task is published with a soft limit of 77: the pool would interrupt it at 77, so it claims for
    the first 2 s only (a claim lasts 75) and hands the rest on. By the setting it would claim for
    7 s, and send all three emails (2.5 s a message) itself."""
    url = redis_server.url_for(TIME_LIMIT_REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    settings = {
        "TASK_SOFT_TIME_LIMIT": "82",
        "TASK_TIME_LIMIT": "85",
        "EMAIL_CLAIM_TIMEOUT_SECONDS": "75",
        "DATABASE_TASK_STATEMENT_TIMEOUT": "5",
        "SMTP_TIMEOUT": "4",
    }
    addresses = ("one@example.org", "two@example.org", "three@example.org")
    ids = _queue_batch(*addresses)
    for address in addresses:
        mail_sink.delay[address] = 2.5
    by_worker = given_by == "the worker's --soft-time-limit"
    producer = Celery("time-limit-test")
    producer.config_from_object(celery_settings({**app.config, "REDIS_URL": url}))
    own_limit = None if by_worker else 77
    producer.send_task(outbox.SEND_EMAILS, kwargs={"email_ids": ids}, soft_time_limit=own_limit)
    producer.close()

    log = tmp_path / "worker.log"
    options = ("--soft-time-limit", "77") if by_worker else ()
    worker = Worker({**test_env, **settings, "REDIS_URL": url}, log, pool="prefork", options=options)
    worker.start()
    try:
        wait_until(lambda: _statuses(ids) == [("sent", 1)] * 3, timeout=90)
    finally:
        worker.stop()
    assert len(mail_sink.messages()) == 3
    text = log.read_text()
    assert "handed on to a new task" in text and "Soft time limit" not in text

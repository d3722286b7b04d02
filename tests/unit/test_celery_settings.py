"""The Celery settings the worker and beat run with: every task bounded in time, below the moment
Redis would hand it to a second worker."""

from types import SimpleNamespace

import pytest
from celery import Celery

import config
from leads.messaging import outbox
from workers import celery_settings, settle_soft_time_limit


@pytest.fixture
def settings():
    return celery_settings(vars(config.TestingConfig()))


def test_a_hung_task_is_interrupted_then_killed_before_redis_delivers_it_again(settings):
    # The soft limit is the worker's (`settle_soft_time_limit`), TASK_SOFT_TIME_LIMIT by default.
    soft, hard = config.TestingConfig().TASK_SOFT_TIME_LIMIT, settings["task_time_limit"]
    assert 0 < soft < hard < settings["broker_transport_options"]["visibility_timeout"]
    # Room after the interruption to close a mail server's connection (SMTP_TIMEOUT) and roll back.
    assert hard - soft >= 2 * config.TestingConfig().SMTP_TIMEOUT


def test_the_time_limits_follow_the_settings(monkeypatch):
    monkeypatch.setenv("TASK_SOFT_TIME_LIMIT", "100")
    monkeypatch.setenv("TASK_TIME_LIMIT", "130")
    settings = celery_settings(vars(config.TestingConfig()))
    assert settings["task_time_limit"] == 130
    # Not a task setting: Celery would copy it onto every task, where it outranks the worker's option.
    assert "task_soft_time_limit" not in settings
    worker = SimpleNamespace(soft_time_limit=None)
    settle_soft_time_limit(worker, {"TASK_SOFT_TIME_LIMIT": 100})
    assert worker.soft_time_limit == 100


def test_a_workers_soft_time_limit_becomes_the_one_its_tasks_read():
    settings = vars(config.TestingConfig())
    settle_soft_time_limit(SimpleNamespace(soft_time_limit=250), settings)
    assert settings["TASK_SOFT_TIME_LIMIT"] == 250


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (400, "--soft-time-limit must be more than 0 and less than TASK_TIME_LIMIT"),
        (20, "EMAIL_CLAIM_TIMEOUT_SECONDS must be less than --soft-time-limit"),
    ],
)
def test_a_worker_refuses_a_soft_time_limit_option_the_settings_do_not_allow(option, message):
    """Above the hard limit, or too short for one claim: the worker does not start, and says why."""
    settings = vars(config.TestingConfig())
    with pytest.raises(config.ConfigError, match=message):
        settle_soft_time_limit(SimpleNamespace(soft_time_limit=option), settings)


def test_every_beat_entry_expires_after_a_few_intervals_and_never_within_minutes(settings):
    """During a worker outage beat goes on publishing; the copies no worker took in time are
    discarded unrun, so a returning worker runs a few of each sweep, not hundreds. Behind a
    backlog of a few minutes a copy still reaches a worker, so the sweep still runs."""
    assert settings["beat_schedule"]
    for name, entry in settings["beat_schedule"].items():
        expires = entry.get("options", {}).get("expires")
        interval = entry["schedule"].total_seconds()
        assert expires is not None, f"{name} never expires"
        assert max(interval, 300) <= expires <= max(4 * interval, 300), name


def _in_memory(settings) -> Celery:
    """A Celery app with the workers' queues and routes over kombu's in-memory broker."""
    app = Celery("bindings", set_as_current=False)
    app.config_from_object(
        {**settings, "broker_url": "memory://", "broker_transport": None, "broker_transport_options": {}}
    )
    return app


def test_each_queue_is_bound_to_an_exchange_of_its_own_under_its_own_name(settings):
    """What a worker declares (and its start-up banner shows): the email queue is not bound to the
    routing queue's exchange and key, which Celery gives a queue declared without its own."""
    queues = _in_memory(settings).amqp.queues
    assert {name: (q.exchange.name, q.exchange.type, q.routing_key) for name, q in queues.items()} == {
        outbox.ROUTING_QUEUE: (outbox.ROUTING_QUEUE, "direct", outbox.ROUTING_QUEUE),
        outbox.EMAIL_QUEUE: (outbox.EMAIL_QUEUE, "direct", outbox.EMAIL_QUEUE),
    }


def test_a_message_sent_through_a_queues_binding_reaches_that_queue_alone(settings):
    """Published through its declared exchange and key, a message lands in its own queue only; so
    does a task Celery routes (to the nameless exchange, keyed by the queue's name), with its priority."""
    app = _in_memory(settings)
    queues = app.amqp.queues
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues.values():
            queue(channel).declare()
        for queue in queues.values():
            connection.Producer(channel).publish(
                {"via": queue.name}, exchange=queue.exchange, routing_key=queue.routing_key
            )
        app.send_task(outbox.SEND_EMAILS, kwargs={"email_ids": []}, connection=connection)
        app.send_task(outbox.ROUTE_LEAD, kwargs={"lead_id": 1}, connection=connection)

        def drained(name):
            messages = []
            while (message := queues[name](channel).get(no_ack=True)) is not None:
                messages.append(message)
            return messages

        email, routing = drained(outbox.EMAIL_QUEUE), drained(outbox.ROUTING_QUEUE)
    assert [m.payload for m in email if "via" in m.payload] == [{"via": outbox.EMAIL_QUEUE}]
    assert [m.payload for m in routing if "via" in m.payload] == [{"via": outbox.ROUTING_QUEUE}]
    assert [(m.headers["task"], m.properties["priority"]) for m in email if "task" in m.headers] == [
        (outbox.SEND_EMAILS, outbox.LATER_PRIORITY)
    ]
    assert [m.headers["task"] for m in routing if "task" in m.headers] == [outbox.ROUTE_LEAD]

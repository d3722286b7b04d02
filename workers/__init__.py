"""Celery bound to the Flask app: every task runs inside the app context."""

import time
from contextvars import ContextVar
from datetime import timedelta

from celery import Celery, Task
from flask import Flask
from kombu import Exchange, Queue

from config import BROKER_VISIBILITY_TIMEOUT, check_soft_time_limit, sentinel_addresses
from leads import connections
from leads.messaging import outbox
from workers.broker import transport_for


def celery_settings(config) -> dict:
    """Celery settings derived from the Flask config."""
    timeout = config["BROKER_PUBLISH_TIMEOUT"]
    return {
        "broker_url": config["REDIS_URL"],
        # kombu's Redis transport with the fix for acknowledging after an outage (workers/broker.py).
        "broker_transport": transport_for(config["REDIS_URL"]),
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A task that hangs (a mail server that answers each step just before SMTP_TIMEOUT, a
        # batch of such emails, a database that stopped answering) is interrupted, then killed,
        # before the visibility timeout hands it to another worker (config.py checks the order).
        # The leads it left are the sweeps'; a send task stops claiming emails in time and hands
        # the rest on (`deliver_emails`), so none is in flight when the interruption comes. The
        # soft limit is the worker's (`settle_soft_time_limit`), not a setting here: Celery would
        # copy task_soft_time_limit onto every task, and a task's own limit outranks the worker's
        # --soft-time-limit, which would then be ignored.
        "task_time_limit": config["TASK_TIME_LIMIT"],
        # A lost broker connection must not kill the tasks running (an email mid-conversation
        # would be left claimed): their acknowledgement fails, and Redis redelivers them later.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # Routing never waits behind a backlog of emails: each has its own queue. A worker started
        # without -Q consumes both, taking from each in turn (so a route_lead waits for at most one
        # email per pool process); operators may also run separate `-Q routing` and `-Q email` workers.
        # Emails other than providers' travel at a lower priority, so they never hold up either.
        "task_queues": tuple(_own_queue(name) for name in (outbox.ROUTING_QUEUE, outbox.EMAIL_QUEUE)),
        "task_default_queue": outbox.ROUTING_QUEUE,
        "task_routes": {
            name: {"queue": outbox.EMAIL_QUEUE}
            | ({"priority": outbox.LATER_PRIORITY} if name in outbox.LATER_TASKS else {})
            for name in outbox.EMAIL_TASKS
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": timeout,
        "broker_transport_options": {
            "socket_connect_timeout": timeout,
            "socket_timeout": max(timeout, 5.0),
            # Publishing fails at once when Redis is down (kombu would otherwise retry for
            # seconds inside the patient's request); the outbox sweep publishes it later.
            "max_retries": 0,
            # An unacknowledged task of a killed worker is redelivered after this. Long back-off
            # lives in the database, so no task ever waits in Redis anywhere near this long.
            "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
            # When REDIS_URL names Sentinel nodes: the master they watch.
            **(
                {"master_name": config["REDIS_SENTINEL_MASTER"]}
                if sentinel_addresses(config["REDIS_URL"])
                else {}
            ),
        },
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "beat_schedule": {
            "sweep-outbox": _every(config["OUTBOX_SWEEP_SECONDS"], outbox.SWEEP_OUTBOX),
            "dispatch-due-emails": _every(config["DUE_EMAIL_SWEEP_SECONDS"], outbox.DISPATCH_DUE_EMAILS),
            "route-waiting-leads": _every(config["ROUTING_SWEEP_SECONDS"], outbox.ROUTE_WAITING_LEADS),
            "apply-retention": _every(24 * 3600, outbox.APPLY_RETENTION),
            "escalate-assignments": _every(config["ESCALATION_SWEEP_SECONDS"], outbox.ESCALATE_ASSIGNMENTS),
            "refresh-stats-summaries": _every(
                config["STATS_SUMMARY_SECONDS"], outbox.REFRESH_STATS_SUMMARIES
            ),
        },
    }


def _own_queue(name: str) -> Queue:
    """A queue bound to a direct exchange of its own, under its own name. A bare Queue(name) takes
    Celery's default exchange and routing key, both the default queue's name (`routing`): the email
    queue was declared bound to the routing exchange with the key `routing`, so a message published
    through that binding would have reached both queues. Celery's own publishing goes to the
    nameless exchange keyed by the queue's name, which routed correctly either way; priorities are
    the message's and never depended on the exchange."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


# A copy of a sweep waits in its queue at most this long, or four of its intervals if longer.
SWEEP_EXPIRY_FLOOR_SECONDS = 300


def _every(seconds: float, task: str) -> dict:
    """A beat entry whose copies expire after four intervals (at least five minutes): while no
    worker takes them (an outage), beat's copies pile up in Redis, and each would run the same
    sweep again ahead of the leads behind them; a worker discards an expired copy unrun, since
    every sweep takes whatever is due when it runs. Not sooner: behind a backlog of a few minutes
    (a slow mail server, a broker's republished tasks) a copy must still reach a worker, or the
    sweep would not run until the backlog ends; and a worker's clock a little ahead of beat's
    must not discard every copy."""
    expires = max(4 * seconds, SWEEP_EXPIRY_FLOOR_SECONDS)
    return {"task": task, "schedule": timedelta(seconds=seconds), "options": {"expires": expires}}


def settle_soft_time_limit(worker, config) -> None:
    """At a worker's start (`worker_init`, before its pool exists): the soft time limit its pool
    interrupts tasks at is `celery worker --soft-time-limit` when given, else TASK_SOFT_TIME_LIMIT;
    the first becomes the worker's TASK_SOFT_TIME_LIMIT too (its pool processes are forked after
    this), so what its tasks read is what they run under. ConfigError, and no worker, when the
    option breaks the rules config.py holds TASK_SOFT_TIME_LIMIT to."""
    if worker.soft_time_limit is None:
        worker.soft_time_limit = config["TASK_SOFT_TIME_LIMIT"]
        return
    check_soft_time_limit(worker.soft_time_limit, config, name="--soft-time-limit")
    config["TASK_SOFT_TIME_LIMIT"] = worker.soft_time_limit


def soft_time_limit_of(task: Task, config) -> float:
    """The soft time limit `task` runs under, by the pool's own rule (celery.worker.request): the
    one its message carries (published with apply_async(soft_time_limit=...)), else the task's own
    (a task declared with one), else the worker's (`settle_soft_time_limit`)."""
    _, published = task.request.timelimit or (None, None)
    return published or task.soft_time_limit or config["TASK_SOFT_TIME_LIMIT"]


# When the task running in this context is interrupted at its soft time limit (time.monotonic());
# unset outside a task.
_interrupted_at: ContextVar[float | None] = ContextVar("interrupted_at", default=None)


def soft_time_limit_at() -> float | None:
    """When the running task is interrupted at its soft time limit (time.monotonic()), counted from
    its start as the pool counts it (from a few milliseconds earlier, when the pool process took
    it: within the margins of what must end before it); None outside a task."""
    return _interrupted_at.get()


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app for `app` and keep it in app.extensions['celery']."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            interrupted_at = time.monotonic() + soft_time_limit_of(self, app.config)
            token = _interrupted_at.set(interrupted_at)
            try:
                # A task's statements get a task's timeouts (DATABASE_TASK_*), not a request's.
                with app.app_context(), connections.running_a_task():
                    return self.run(*args, **kwargs)
            finally:
                _interrupted_at.reset(token)

    celery_app = Celery(app.name, task_cls=FlaskTask, include=["workers.tasks"])
    celery_app.config_from_object(celery_settings(app.config))
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app

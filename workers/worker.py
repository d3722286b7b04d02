"""Entry point: `celery -A workers.worker worker` and `celery -A workers.worker beat`."""

from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from leads import create_app_or_exit, stopping_on_config_error
from leads.messaging import outbox
from workers import settle_soft_time_limit

flask_app = create_app_or_exit()
celery_app = flask_app.extensions["celery"]


@worker_init.connect
def _settle_soft_time_limit(sender, **_) -> None:
    """The pool's soft time limit: --soft-time-limit when given, else TASK_SOFT_TIME_LIMIT. One the
    settings do not allow stops the worker: Celery only logs what a signal handler raises, and
    would start the worker anyway under that limit."""
    with stopping_on_config_error():
        settle_soft_time_limit(sender, flask_app.config)


@worker_process_init.connect
def _log_what_tasks_publish(**_) -> None:
    """Each pool process marks the outbox rows its tasks published once per interval, as the web
    does, instead of one more write transaction per routing."""
    outbox.log_what_tasks_publish(flask_app)


@worker_process_shutdown.connect
def _mark_before_leaving(**_) -> None:
    """A prefork pool process leaves without running exit handlers: mark what it published."""
    outbox.PublishedLog.of(flask_app).flush()

"""The operations page: queues, waiting work and beat, each red past its threshold."""

import json
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import outbox
from leads.messaging.email import queue_email
from leads.models import EmailMessage, OutboxMessage, Role
from leads.staff import operations
from leads.timeutil import utcnow
from tests.factories import LeadFactory
from tests.staff_support import marking_catalog, signed_in_client

pytestmark = pytest.mark.pg
URL = "/staff/admin/operations"


def _broker(redis_server):
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def admin(app, redis_server):
    _broker(redis_server).flushdb()
    client, _ = signed_in_client(app, Role.ADMIN)
    return client


def test_a_quiet_system_shows_nothing_red(admin, redis_server, app):
    operations.record_beat_run()
    page = admin.get(URL).get_data(as_text=True)
    assert "Attention</span> " not in page
    assert "Oldest lead not yet routed" in page and "none" in page
    assert "Last beat run" in page


def test_each_figure_turns_red_past_its_threshold(admin, redis_server, taxonomy):
    now = utcnow()
    LeadFactory(status="new", created_at=now - timedelta(minutes=20))
    db.session.execute(
        sa.insert(OutboxMessage).values(
            task_name="workers.route_lead", payload={}, created_at=now - timedelta(minutes=5), attempts=1
        )
    )
    retrying = db.session.get(
        EmailMessage,
        queue_email(template="test_message", to="a@example.org", idempotency_key="a", sent_at=now),
    )
    retrying.attempts, retrying.next_attempt_at = 1, now - timedelta(minutes=20)
    failed = db.session.get(
        EmailMessage,
        queue_email(template="test_message", to="b@example.org", idempotency_key="b", sent_at=now),
    )
    failed.status, failed.attempts = "failed", 1
    db.session.commit()
    task = json.dumps({"headers": {"task": "workers.send_email"}, "body": ""})
    _broker(redis_server).rpush(outbox.EMAIL_QUEUE, *[task] * (operations.QUEUE_RED + 1))

    page = admin.get(URL).get_data(as_text=True)
    # unrouted, outbox, overdue email, retrying, failed, beat never recorded, the queue
    assert page.count("Attention</span> ") == 7
    # the two emails' send task (one for both, at the lower priority) is counted in the queue too
    assert "<h2>Queue 'email': 502 tasks</h2>" in page and "workers.send_emails" in page


def test_with_redis_down_the_page_still_answers_and_says_so(admin, redis_server):
    redis_server.stop()
    response = admin.get(URL)
    assert response.status_code == 200
    assert "Redis unreachable" in response.get_data(as_text=True)


def test_with_redis_down_the_warning_reaches_the_catalogs(admin, redis_server, app):
    """The problem itself stays English (the page's figures do); the sentence around it is translated."""
    redis_server.stop()
    with marking_catalog(app):
        page = admin.get(URL).get_data(as_text=True)
    assert "⟦Redis unreachable: ConnectionError: queue figures are missing.⟧" in page


def test_the_operations_page_is_for_admins_only(app):
    coordinator, _ = signed_in_client(app, Role.COORDINATOR)
    assert coordinator.get(URL).status_code == 403


def test_each_outbox_sweep_records_the_beat_run(app, redis_server):
    import workers.tasks  # noqa: F401  (registers the tasks with the app's Celery)

    _broker(redis_server).delete(operations.BEAT_RUN_KEY)
    app.extensions["celery"].tasks[outbox.SWEEP_OUTBOX]()  # the task as beat has it run
    assert _broker(redis_server).get(operations.BEAT_RUN_KEY)
    [beat] = [figure for figure in operations.collect().figures if figure.label == "Last beat run"]
    assert not beat.red and beat.value.endswith(" sec ago")

"""Many workers, one truth: two web processes (gunicorn) and two worker processes against one
PostgreSQL and one Redis route 1,000 leads with tight capacities. No capacity is exceeded, no
provider is offered a lead twice, no email goes out twice, and no outbox row is published twice."""

import email.parser
import http.client
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
import redis
import sqlalchemy as sa

from config import BASE_DIR
from leads.dev import seed
from leads.extensions import db
from leads.messaging import outbox
from leads.models import Assignment, EmailMessage, Lead, OutboxMessage, Provider
from tests.helpers import wait_until
from tests.quote_support import answers
from tests.servers import Worker, free_port, wait_for_port

pytestmark = [pytest.mark.commits, pytest.mark.pg, pytest.mark.pg_only]

LEADS = 1000
CAPACITY = 25  # a week, per provider: far fewer places than 1,000 leads want
REDIS_DB = 3  # this test's processes talk to each other only
SWEEP_ROWS = 2000  # enough for two sweepers to overlap


@pytest.fixture
def processes(app, taxonomy, test_env, redis_server, tmp_path):
    seed.load_demo_providers()
    db.session.execute(sa.update(Provider).values(weekly_capacity=CAPACITY))
    db.session.commit()
    redis.Redis.from_url(redis_server.url_for(REDIS_DB)).flushdb()
    env = {
        **os.environ,
        **test_env,
        "REDIS_URL": redis_server.url_for(REDIS_DB),
        "QUOTE_MIN_FILL_SECONDS": "0",
        "QUOTE_RATE_LIMIT": "100000 per minute",
        # As in production: each web process marks what it published once per interval.
        "OUTBOX_RECORD_INTERVAL_SECONDS": "0.2",
    }
    started, ports = [], []
    for number in range(2):
        port = free_port()
        log = (tmp_path / f"web{number}.log").open("wb")
        started.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        ports.append(port)
    workers = [Worker(env, tmp_path / f"worker{number}.log") for number in range(2)]
    try:
        for port in ports:
            wait_for_port(port, timeout=60)
        for worker in workers:
            worker.start()
        yield ports
    finally:
        for worker in workers:
            worker.stop()
        for process in started:
            process.terminate()
            process.wait(timeout=20)


def test_two_web_and_two_worker_processes_route_a_thousand_leads_without_a_double(app, processes, mail_sink):
    def submit(number):
        data = answers(app, email=f"many{number}@example.org", phone=f"+45{20100000 + number}")
        connection = http.client.HTTPConnection("127.0.0.1", processes[number % 2], timeout=60)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", "/quote", body=urlencode(data), headers=headers)
        status = connection.getresponse().status
        connection.close()
        return status

    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(pool.map(submit, range(LEADS)))
    assert statuses == {303: LEADS}

    def everything_done():
        db.session.rollback()
        waiting = db.session.scalar(sa.select(sa.func.count(Lead.id)).where(Lead.status == "new"))
        unsent = db.session.scalar(
            sa.select(sa.func.count(EmailMessage.id)).where(EmailMessage.status.in_(["queued", "sending"]))
        )
        return waiting == 0 and unsent == 0

    wait_until(everything_done, timeout=240, interval=1.0)

    per_provider = db.session.execute(
        sa.select(Assignment.provider_id, sa.func.count(Assignment.id)).group_by(Assignment.provider_id)
    ).all()
    assert per_provider and all(count <= CAPACITY for _, count in per_provider), per_provider
    doubles = db.session.execute(
        sa.select(Assignment.lead_id, Assignment.provider_id)
        .group_by(Assignment.lead_id, Assignment.provider_id)
        .having(sa.func.count() > 1)
    ).all()
    assert doubles == []

    received = Counter(
        str(email.parser.BytesHeaderParser().parsebytes(path.read_bytes())["Message-ID"]).strip()
        for path in mail_sink.messages()
    )
    sent = db.session.scalar(sa.select(sa.func.count(EmailMessage.id)).where(EmailMessage.status == "sent"))
    assert [message_id for message_id, times in received.items() if times > 1] == []
    assert len(received) == sent
    assert (
        db.session.scalar(
            sa.select(sa.func.count(OutboxMessage.id)).where(
                sa.or_(OutboxMessage.dispatched_at.is_(None), OutboxMessage.attempts != 1)
            )
        )
        == 0
    ), "every outbox row published exactly once (no beat runs here: the fast path alone)"


def test_two_sweepers_at_once_never_publish_a_row_twice(app, redis_server, tmp_path):
    queue = redis.Redis.from_url(redis_server.url)
    queue.flushdb()
    db.session.execute(
        sa.insert(OutboxMessage),
        [{"task_name": outbox.SWEEP_OUTBOX, "payload": {}, "attempts": 0} for _ in range(SWEEP_ROWS)],
    )
    db.session.commit()
    script = (
        "import time, config; from leads import create_app; from leads.messaging import outbox\n"
        "app = create_app(config.TestingConfig)\n"
        "with app.app_context():\n"
        # Both start sweeping at the same moment, once each has started (slow on a busy machine).
        f"    time.sleep(max(0, {time.time() + 10} - time.time()))\n"
        f"    outbox.publish_stale(limit={SWEEP_ROWS})\n"
    )
    env = {**os.environ, "OUTBOX_GRACE_SECONDS": "0", "REDIS_URL": redis_server.url}
    sweepers = [subprocess.Popen([sys.executable, "-c", script], cwd=BASE_DIR, env=env) for _ in range(2)]
    assert [sweeper.wait(timeout=60) for sweeper in sweepers] == [0, 0]
    assert queue.llen(outbox.ROUTING_QUEUE) == SWEEP_ROWS

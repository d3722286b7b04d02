"""Routing and sending by one worker process (concurrency 1, the `make run` flags), against
Celery's own drain rate of no-op tasks measured in the same run, on SQLite (WAL) with a real Redis
and the project's SMTP sink. Leads are stored first through `submit_quote` with no worker
running; then a worker consumes one queue and the clock runs from its "ready" line until the
database shows every task done.

    BENCH_RUNS=3 BENCH_WORKER_LEADS=300 python bench/bench_worker.py
"""

import time
from pathlib import Path

import redis
import sqlalchemy as sa
from _support import BIN, ROOT, Servers, free_port, prepare_database, row, setting, store_leads
from celery import Celery

from leads.dev.mailsink import start_sink
from leads.messaging import outbox
from leads.models import EmailMessage, Lead, OutboxMessage
from leads.staff.operations import PRIORITY_SEPARATOR

RUNS = setting("runs", 3)
LEADS = setting("worker_leads", 300)
FLAGS = ["--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]


def worker(servers: Servers, app_name: str, queue: str, env: dict, cwd: Path = ROOT):
    args = [
        str(BIN / "celery"),
        "-A",
        app_name,
        "worker",
        "-Q",
        queue,
        "-n",
        f"{queue}-{time.time_ns()}@%h",
        *FLAGS,
    ]
    process = servers.start(args, env=env, cwd=cwd, name=f"worker-{queue}")
    log = Path(servers.work / f"worker-{queue}-{len(servers.processes) - 1}.log")
    deadline = time.monotonic() + 120
    while b" ready." not in log.read_bytes():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.02)
    return process, time.perf_counter()


def wait_for(count_done, total: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while count_done() < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count_done()} of {total} done after {timeout} s")
        time.sleep(0.01)
    return time.perf_counter()


def one_run(number: int) -> tuple[float, float, float]:
    with Servers(f"bench-worker-{number}-") as servers:
        database_url = servers.sqlite()
        prepare_database(database_url, unlimited_capacity=True)
        redis_url = servers.redis()
        controller, _ = start_sink(servers.work / "mail", port=free_port())
        env = {
            "APP_ENV": "testing",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SMTP_PORT": str(controller.port),
            "PYTHONPATH": str(ROOT),
        }
        try:
            engine = sa.create_engine(database_url)
            store_leads(database_url, redis_url, LEADS)
            broker = redis.Redis.from_url(redis_url)
            # The patients' confirmations (in the queue's lower-priority list): not part of this
            # figure. Each routing task hands its lead's confirmation over as it starts.
            later = f"{outbox.EMAIL_QUEUE}{PRIORITY_SEPARATOR}{outbox.LATER_PRIORITY}"

            def routed():
                with engine.connect() as c:
                    return c.scalar(sa.select(sa.func.count(Lead.id)).where(Lead.status != "new"))

            def published():
                with engine.connect() as c:
                    undispatched = sa.select(sa.func.count(OutboxMessage.id)).where(
                        OutboxMessage.dispatched_at.is_(None)
                    )
                    return int(c.scalar(undispatched) == 0)

            process, started = worker(servers, "workers.worker", outbox.ROUTING_QUEUE, env)
            routing_rate = LEADS / (wait_for(routed, LEADS) - started)
            wait_for(published, 1)  # the last lead's email tasks reach the broker before the worker stops
            servers.stop(process)
            broker.delete(later)
            with engine.connect() as c:
                queued = c.scalar(
                    sa.select(sa.func.count(EmailMessage.id)).where(
                        EmailMessage.template.startswith("provider_")
                    )
                )

            def sent():
                with engine.connect() as c:
                    return c.scalar(
                        sa.select(sa.func.count(EmailMessage.id)).where(EmailMessage.status == "sent")
                    )

            process, started = worker(servers, "workers.worker", outbox.EMAIL_QUEUE, env)
            sending_rate = queued / (wait_for(sent, queued) - started)
            servers.stop(process)

            bare_env = {
                "BARE_REDIS_URL": redis_url,
                "BARE_DATABASE_URL": database_url,
                "BARE_SMTP_PORT": str(controller.port),
            }
            producer = Celery("bench", broker=redis_url)  # this run's Redis
            for _ in range(LEADS):
                producer.send_task("bare.noop", queue="noop")
            producer.close()
            process, started = worker(servers, "bare_app:celery_app", "noop", bare_env, cwd=ROOT / "bench")
            noop_rate = LEADS / (
                wait_for(lambda: LEADS - broker.llen("noop") - _unacked(broker), LEADS) - started
            )
            servers.stop(process)
            engine.dispose()
        finally:
            controller.stop()
        return routing_rate, sending_rate, noop_rate


def _unacked(broker) -> int:
    return broker.hlen("unacked")


def main() -> None:
    results = [one_run(n) for n in range(RUNS)]
    routing, sending, noop = ([r[i] for r in results] for i in range(3))
    note = f"{LEADS} leads × {RUNS}; one worker, concurrency 1; SQLite"
    row("Worker", "leads routed per second, one worker", "/s", routing, noop, "Celery no-op drain", note)
    row(
        "Worker",
        "emails sent per second, one worker",
        "/s",
        sending,
        noop,
        "Celery no-op drain",
        "SMTP: the project's sink on loopback",
    )


if __name__ == "__main__":
    main()

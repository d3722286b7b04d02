"""Cost of the transactional outbox on a request: commit + publish to a real Redis, against a
plain commit of the same row measured in the same run, and with the broker down."""

import logging
import statistics
import time

import sqlalchemy as sa
from _support import bench_app

from leads.extensions import db
from leads.messaging import outbox
from leads.models import OutboxMessage

ROUNDS = 300


def _time(fn, rounds=ROUNDS) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def _report(label: str, samples: list[float], baseline: float | None = None) -> float:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18]
    ratio = f"  x{median / baseline:.2f} of baseline" if baseline else ""
    print(f"{label:<44} median {median * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms{ratio}")
    return median


def main() -> None:
    with bench_app("bench-outbox-") as (app, redis):

        def plain_commit():
            db.session.execute(sa.insert(OutboxMessage).values(task_name="bench.noop", payload={}))
            db.session.commit()

        def outbox_commit():
            outbox.add_task("bench.noop")
            db.session.commit()

        print(f"{ROUNDS} transactions each, SQLite (WAL) + Redis on loopback")
        baseline = _report("baseline: commit one row, no publish", _time(plain_commit))
        _report("outbox: commit + publish + mark dispatched", _time(outbox_commit), baseline)
        redis.terminate()
        redis.wait()
        # Each failed publish logs a warning, as it should in production; here all 50 are expected.
        logging.getLogger(outbox.__name__).setLevel(logging.ERROR)
        _report("outbox with Redis down (publish fails fast)", _time(outbox_commit, 50), baseline)
        pending = db.session.scalar(
            sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.dispatched_at.is_(None))
        )
        print(f"undispatched rows left for the beat sweep: {pending - ROUNDS}")


if __name__ == "__main__":
    main()

"""Cost of the transactional outbox on a request: commit + publish to a real Redis, against a
plain commit of the same row measured in the same run, and with the broker down."""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

import config  # noqa: E402
from leads import create_app, outbox  # noqa: E402
from leads.dev.redis_server import server_args  # noqa: E402
from leads.extensions import db  # noqa: E402
from leads.models import OutboxMessage  # noqa: E402
from tests.servers import free_port, wait_for_port  # noqa: E402

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
    work = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    port = free_port()
    redis = subprocess.Popen(server_args(port, work, persist=False), stdout=subprocess.DEVNULL)
    wait_for_port(port)
    try:
        app = create_app(
            config.TestingConfig,
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{work / 'bench.db'}",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
        )
        with app.app_context():
            db.create_all()

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
            _report("outbox with Redis down (publish fails fast)", _time(outbox_commit, 50), baseline)
            pending = db.session.scalar(
                sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.dispatched_at.is_(None))
            )
            print(f"undispatched rows left for the beat sweep: {pending - ROUNDS}")
    finally:
        if redis.poll() is None:
            redis.terminate()


if __name__ == "__main__":
    main()

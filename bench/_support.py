"""What the benchmarks share: the repository on the import path, and an app on a fresh SQLite
file with a Redis server of its own."""

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# These imports need the repository on the path (above).
import config
from leads import create_app
from leads.dev.redis_server import server_args
from leads.extensions import db
from tests.servers import free_port, wait_for_port


@contextmanager
def bench_app(prefix: str, *, pushed: bool = True, **overrides) -> Iterator[tuple[object, subprocess.Popen]]:
    """The app (tables created) and its Redis process, which a bench may stop.

    `pushed`: the bench runs inside one app context (one session); without it, each request the
    bench makes gets its own context and session, as under gunicorn.
    """
    work = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    redis = subprocess.Popen(server_args(port, work, persist=False), stdout=subprocess.DEVNULL)
    wait_for_port(port)
    try:
        app = create_app(
            config.TestingConfig,
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{work / 'bench.db'}",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            **overrides,
        )
        with app.app_context():
            db.create_all()
            if pushed:
                yield app, redis
        if not pushed:
            yield app, redis
    finally:
        if redis.poll() is None:
            redis.terminate()

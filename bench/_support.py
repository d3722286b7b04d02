"""What the benchmarks share: the repository on the import path, an app on a fresh SQLite file
with a Redis server of its own, servers started as separate processes (gunicorn, Celery, Redis,
PostgreSQL), figures summarised as medians with their spread, and the rows of the one table."""

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# These imports need the repository on the path (above).
import config
from leads import create_app
from leads.dev.redis_server import server_args
from leads.extensions import db
from tests.pg_cluster import PgCluster, find_pg_bin
from tests.servers import free_port, wait_for_port

BIN = Path(sys.executable).parent
# Benchmarks write their rows here (one JSON object a line) when run_all.py asks them to.
ROWS_FILE = os.environ.get("BENCH_ROWS_FILE")


def setting(name: str, default: float) -> float:
    """A bench parameter from the environment (BENCH_<NAME>), so a quick run is possible."""
    value = os.environ.get(f"BENCH_{name.upper()}")
    return type(default)(value) if value else default


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


class Servers:
    """Processes started for one benchmark, stopped together (in reverse order) at the end."""

    def __init__(self, prefix: str) -> None:
        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes: list[subprocess.Popen] = []
        self.clusters: list[PgCluster] = []

    def start(self, args: list[str], *, env: dict | None = None, port: int | None = None, cwd=ROOT, name="p",
              log_name: str | None = None):  # fmt: skip
        log = (self.work / f"{log_name or f'{name}-{len(self.processes)}'}.log").open("ab")
        process = subprocess.Popen(
            args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        if port:
            wait_for_port(port, timeout=60)
        return process

    def redis(self) -> str:
        port = free_port()
        self.start(server_args(port, self.work, persist=False), port=port, name="redis")
        return f"redis://127.0.0.1:{port}/0"

    def postgresql(self) -> str:
        """A throwaway PostgreSQL cluster, started as the tests start theirs (fsync off)."""
        cluster = PgCluster()
        cluster.start()
        self.clusters.append(cluster)
        return cluster.url()

    def sqlite(self) -> str:
        return f"sqlite:///{self.work / 'bench.db'}"

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def close(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)
        for cluster in self.clusters:
            cluster.stop()

    def __enter__(self):
        # A bench stopped with SIGTERM still stops its servers (they run in sessions of their own).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return self

    def __exit__(self, *exc):
        self.close()


def postgresql_available() -> bool:
    return find_pg_bin() is not None


def project_env(database_url: str, redis_url: str, *, web_port: int, smtp_port: int = 9) -> dict:
    """The production configuration the project's processes run with in a benchmark; the time
    trap and the rate limit are relaxed (the load generator is one client address)."""
    return {
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        # Production takes only an https:// address; the links in the emails are never followed.
        "BASE_URL": f"https://127.0.0.1:{web_port}",
        "TRUSTED_PROXY_COUNT": "0",
        # Production refuses addresses at localhost; the sink on loopback needs no encryption.
        "MAIL_FROM": "Treatment quotes <quotes@bench.example>",
        "COORDINATOR_EMAIL": "coordinators@bench.example",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "QUOTE_MIN_FILL_SECONDS": "0",
        "QUOTE_RATE_LIMIT": "100000000 per minute",
        "PYTHONPATH": str(ROOT),
    }


def prepare_database(database_url: str, *, unlimited_capacity: bool = False) -> None:
    """Migrate the database and load the taxonomy and the demo directory.

    `unlimited_capacity`: every demo provider takes any number of leads a week, so that a
    benchmark sending thousands of leads measures routing, not a full directory.
    """
    from flask_migrate import upgrade

    from leads.dev import seed
    from leads.models import Provider

    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=database_url)
    with app.app_context():
        upgrade()
        seed.load_taxonomy()
        seed.load_demo_providers()
        if unlimited_capacity:
            db.session.execute(sa.update(Provider).values(weekly_capacity=1_000_000))
        db.session.commit()
        db.engine.dispose()


def store_leads(database_url: str, redis_url: str, count: int) -> None:
    """Store `count` quote requests through `submit_quote`, publishing their tasks to `redis_url`."""
    from leads import consent
    from leads.intake import QuoteRequest, submit_quote

    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url)
    with app.app_context():
        for number in range(count):
            submit_quote(
                QuoteRequest(
                    full_name="Freja Ørsted",
                    email=f"bench{number}@example.org",
                    phone=f"+45{20100000 + number}",
                    country="DK",
                    preferred_language="da",
                    treatment="neurorehabilitation-spinal-cord-injury",
                    condition="spinal-cord-injury-incomplete",
                    details="Injured at C6 two years ago; walking with a frame.",
                    timeframe="3-6-months",
                    budget="20000-50000-eur",
                    contact_preference="email",
                    consent_version=consent.CURRENT_VERSION,
                    consent_language="en",
                    submission_key=secrets.token_urlsafe(16),
                )
            )
        db.session.remove()
        db.engine.dispose()


def gunicorn(app_spec: str, port: int, workers: int = 4, threads: int = 1) -> list[str]:
    """Gunicorn's command line: the same settings for the project and its baseline."""
    args = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    if threads > 1:
        args += ["--threads", str(threads)]
    return [*args, app_spec]


def load(base_url: str, kind: str, mode: str, **options) -> dict:
    """Run the load generator (bench/loadgen.py) as its own process; its JSON summary."""
    args = [sys.executable, str(ROOT / "bench" / "loadgen.py"), base_url, kind, mode]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def summary(values: list[float]) -> tuple[float, float, float]:
    """Median, lowest and highest of several runs."""
    return statistics.median(values), min(values), max(values)


def row(section: str, label: str, unit: str, project: list[float], baseline: list[float] | None = None,
        baseline_label: str = "", note: str = "") -> None:  # fmt: skip
    """Print one row of the table (and hand it to run_all.py): medians with their spread."""
    record = {
        "section": section,
        "label": label,
        "unit": unit,
        "project": project,
        "baseline": baseline,
        "baseline_label": baseline_label,
        "note": note,
    }
    print(format_row(record), flush=True)
    if ROWS_FILE:
        with open(ROWS_FILE, "a") as file:
            file.write(json.dumps(record) + "\n")


def _figure(values: list[float] | None) -> str:
    if not values:
        return "—"
    median, low, high = summary(values)
    spread = f" ({_num(low)}–{_num(high)})" if len(values) > 1 and low != high else ""
    return f"{_num(median)}{spread}"


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_row(record: dict) -> str:
    project, baseline = record["project"], record["baseline"]
    ratio = ""
    if project and baseline:
        ratio = f"{statistics.median(project) / statistics.median(baseline):.2f}"
    cells = [
        record["label"],
        f"{_figure(project)} {record['unit']}",
        f"{_figure(baseline)} {record['unit'] if baseline else ''}".strip()
        + (f" ({record['baseline_label']})" if record["baseline_label"] else ""),
        ratio,
        record["note"],
    ]
    return "| " + " | ".join(cells) + " |"

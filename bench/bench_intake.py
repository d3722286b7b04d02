"""Intake over HTTP: form GET + POST pairs per second and POST latency under 16 concurrent
clients, the project against a bare Flask app (one INSERT per POST) under the same gunicorn
settings (4 sync workers), on SQLite (WAL) and on PostgreSQL 15 (a throwaway cluster, fsync off),
runs alternating, each database already holding BENCH_INTAKE_EXISTING_LEADS leads (50,000; the
bare app's table as many rows). Also one client alone, POST latency at 100 submissions/s (open
loop), and GET /healthz against a bare GET /ping. The benchmark configuration relaxes the time
trap and the per-client rate limit.

    BENCH_RUNS=3 BENCH_SECONDS=20 BENCH_CLIENTS=16 python bench/bench_intake.py
"""

import sqlalchemy as sa
from _support import (
    ROOT,
    Servers,
    config,
    create_app,
    db,
    free_port,
    gunicorn,
    load,
    postgresql_available,
    prepare_database,
    project_env,
    row,
    setting,
)

RUNS = setting("runs", 3)
SECONDS = setting("seconds", 20.0)
CLIENTS = setting("clients", 16)
RATE = setting("intake_rate", 100.0)
# The form writes into a database that already holds leads, as a running service's does (two years
# of them, statistics up to date); an empty one grows under the load and would measure a table
# whose planner statistics say "empty" (PostgreSQL then plans the duplicate check as a scan).
EXISTING = setting("intake_existing_leads", 50_000)


def add_existing_leads(database_url: str, count: int) -> None:
    import bench_queue

    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=database_url)
    with app.app_context():
        bench_queue.add_leads(count)
        db.session.remove()
        db.engine.dispose()


def start_both(servers: Servers, database_url: str) -> tuple[str, str]:
    """The project and the bare app, each on its own port, both on `database_url`."""
    import bare_app

    prepare_database(database_url)
    add_existing_leads(database_url, EXISTING)
    bare_url = database_url.replace("bench.db", "bare.db")  # SQLite: a file of its own
    engine = sa.create_engine(bare_url)
    bare_app.metadata.create_all(engine)
    with engine.begin() as connection:  # as many rows as the project's leads
        for start in range(0, EXISTING, 10_000):
            connection.execute(
                bare_app.submissions.insert(),
                [{"email": f"patient{n}@example.org", "details": "Bench row."}
                 for n in range(start, min(EXISTING, start + 10_000))],
            )  # fmt: skip
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    redis_url = servers.redis()
    project_port, bare_port = free_port(), free_port()
    project_settings = project_env(database_url, redis_url, web_port=project_port)
    servers.start(gunicorn("wsgi:app", project_port), env=project_settings, port=project_port, name="web")
    bare_settings = {"BARE_DATABASE_URL": bare_url}
    servers.start(gunicorn("bare_app:app", bare_port), env=bare_settings, port=bare_port, cwd=ROOT / "bench")
    return f"http://127.0.0.1:{project_port}", f"http://127.0.0.1:{bare_port}"


def runs(url: str, kind: str, mode: str, **options) -> list[dict]:
    return [load(url, kind, mode, **options) for _ in range(RUNS)]


def measure(name: str, database_url_for) -> None:
    with Servers(f"bench-intake-{name}-") as servers:
        project, bare = start_both(servers, database_url_for(servers))
        for url, kind in ((project, "project"), (bare, "bare")):  # each worker's first requests
            load(url, kind, "pairs", clients=CLIENTS, seconds=2)
        mine, base = [], []
        for _ in range(RUNS):  # alternating, so both see the same machine
            mine.append(load(project, "project", "pairs", clients=CLIENTS, seconds=SECONDS))
            base.append(load(bare, "bare", "pairs", clients=CLIENTS, seconds=SECONDS))
        section = f"Intake, {name}"

        def pair(label, key, project_runs, bare_runs, note=""):
            mine_values = [r[key] for r in project_runs]
            row(
                section,
                f"{label}, {name}",
                UNITS[key],
                mine_values,
                [r[key] for r in bare_runs],
                "bare app",
                note,
            )

        errors = sum(r["errors"] for r in mine + base)
        pair("form GET + POST pairs/s", "pairs_per_second", mine, base,
             f"{CLIENTS} clients, {SECONDS:.0f} s × {RUNS}; errors {errors}")  # fmt: skip
        pair("POST p50 under that load", "post_p50_ms", mine, base)
        pair("POST p99 under that load", "post_p99_ms", mine, base)
        alone, bare_alone = (
            runs(project, "project", "pairs", clients=1, seconds=SECONDS / 2),
            runs(bare, "bare", "pairs", clients=1, seconds=SECONDS / 2),
        )
        pair("one client alone, POST p50", "post_p50_ms", alone, bare_alone)
        pair("one client alone, GET p50", "get_p50_ms", alone, bare_alone)
        paced = [_p99(r) for r in runs(project, "project", "open", rate=RATE, seconds=SECONDS / 2)]
        paced_bare = [_p99(r) for r in runs(bare, "bare", "open", rate=RATE, seconds=SECONDS / 2)]
        row(section, f"POST p99 at {RATE:.0f} submissions/s, {name}", "ms", paced, paced_bare, "bare app",
            "goal < 50 ms")  # fmt: skip
        if name == "SQLite":
            health = runs(project, "project", "get", path="/healthz", clients=CLIENTS, seconds=SECONDS / 2)
            ping = runs(bare, "bare", "get", path="/ping", clients=CLIENTS, seconds=SECONDS / 2)
            rates = [r["requests_per_second"] for r in health]
            bare_rates = [r["requests_per_second"] for r in ping]
            row(section, "GET /healthz req/s (bare: GET /ping)", "/s", rates, bare_rates, "bare app")


UNITS = {"pairs_per_second": "/s", "post_p50_ms": "ms", "post_p99_ms": "ms", "get_p50_ms": "ms"}


def _p99(result: dict) -> float:
    times = sorted(s["post_ms"] for s in result["sent"])
    return times[min(len(times) - 1, int(len(times) * 0.99))] if times else float("nan")


def main() -> None:
    measure("SQLite", lambda servers: servers.sqlite())
    if postgresql_available():
        measure("PostgreSQL", lambda servers: servers.postgresql())
    else:
        print("PostgreSQL server binaries not found: the PostgreSQL rows are skipped.")


if __name__ == "__main__":
    main()

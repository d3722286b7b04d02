"""Intake over HTTP: form GET + POST pairs per second and POST latency under 16 concurrent
clients, the project against a bare Flask app (one INSERT per POST) under the same gunicorn
settings (4 sync workers), on SQLite (WAL) and on PostgreSQL 15 (fsync on), runs alternating.
Also one client alone, POST latency at 100 submissions/s (open loop), and GET /healthz against a
bare GET /ping. The benchmark configuration relaxes the time trap and the per-client rate limit.

    BENCH_RUNS=3 BENCH_SECONDS=20 BENCH_CLIENTS=16 python bench/bench_intake.py
"""

from _support import (
    ROOT,
    Servers,
    free_port,
    gunicorn,
    load,
    postgresql_available,
    prepare_database,
    project_env,
    row,
    setting,
)

import sqlalchemy as sa

RUNS = setting("runs", 3)
SECONDS = setting("seconds", 20.0)
CLIENTS = setting("clients", 16)
RATE = setting("intake_rate", 100.0)


def start_both(servers: Servers, database_url: str) -> tuple[str, str]:
    """The project and the bare app, each on its own port, both on `database_url`."""
    import bare_app

    prepare_database(database_url)
    bare_url = database_url.replace("bench.db", "bare.db")
    engine = sa.create_engine(bare_url)
    bare_app.metadata.create_all(engine)
    engine.dispose()
    redis_url = servers.redis()
    project_port, bare_port = free_port(), free_port()
    servers.start(gunicorn("wsgi:app", project_port), env=project_env(database_url, redis_url, web_port=project_port),
                  port=project_port, name="web")  # fmt: skip
    servers.start(gunicorn("bare_app:app", bare_port), env={"BARE_DATABASE_URL": bare_url},
                  port=bare_port, cwd=ROOT / "bench", name="bare")  # fmt: skip
    return f"http://127.0.0.1:{project_port}", f"http://127.0.0.1:{bare_port}"


def measure(name: str, database_url_for) -> None:
    with Servers(f"bench-intake-{name}-") as servers:
        project, bare = start_both(servers, database_url_for(servers))
        mine, base = [], []
        for _ in range(RUNS):
            mine.append(load(project, "project", "pairs", clients=CLIENTS, seconds=SECONDS))
            base.append(load(bare, "bare", "pairs", clients=CLIENTS, seconds=SECONDS))
        errors = sum(r["errors"] for r in mine + base)
        section = f"Intake, {name}"
        note = f"{CLIENTS} clients, {SECONDS:.0f} s × {RUNS}; errors {errors}"
        row(section, f"form GET + POST pairs/s, {name}", "/s", [r["pairs_per_second"] for r in mine],
            [r["pairs_per_second"] for r in base], "bare app", note)  # fmt: skip
        row(section, f"POST p50 under that load, {name}", "ms", [r["post_p50_ms"] for r in mine],
            [r["post_p50_ms"] for r in base], "bare app")  # fmt: skip
        row(section, f"POST p99 under that load, {name}", "ms", [r["post_p99_ms"] for r in mine],
            [r["post_p99_ms"] for r in base], "bare app")  # fmt: skip
        alone = [load(project, "project", "pairs", clients=1, seconds=SECONDS / 2) for _ in range(RUNS)]
        bare_alone = [load(bare, "bare", "pairs", clients=1, seconds=SECONDS / 2) for _ in range(RUNS)]
        row(section, f"one client alone, POST p50, {name}", "ms", [r["post_p50_ms"] for r in alone],
            [r["post_p50_ms"] for r in bare_alone], "bare app")  # fmt: skip
        row(section, f"one client alone, GET p50, {name}", "ms", [r["get_p50_ms"] for r in alone],
            [r["get_p50_ms"] for r in bare_alone], "bare app")  # fmt: skip
        paced = [load(project, "project", "open", rate=RATE, seconds=SECONDS / 2) for _ in range(RUNS)]
        paced_bare = [load(bare, "bare", "open", rate=RATE, seconds=SECONDS / 2) for _ in range(RUNS)]
        row(section, f"POST p99 at {RATE:.0f} submissions/s, {name}", "ms", [_p99(r) for r in paced],
            [_p99(r) for r in paced_bare], "bare app", "goal < 50 ms")  # fmt: skip
        if name == "SQLite":
            health = [load(project, "project", "get", path="/healthz", clients=CLIENTS, seconds=SECONDS / 2)
                      for _ in range(RUNS)]  # fmt: skip
            ping = [load(bare, "bare", "get", path="/ping", clients=CLIENTS, seconds=SECONDS / 2) for _ in range(RUNS)]
            row(section, "GET /healthz req/s (bare: GET /ping)", "/s", [r["requests_per_second"] for r in health],
                [r["requests_per_second"] for r in ping], "bare app")  # fmt: skip


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

"""Intake in process: the CPU one form GET and one stored POST cost the app itself (no gunicorn,
no load generator, no other client), the project against the bare app of bench_intake.py, both
through Flask's test client in this one process, on SQLite files, runs alternating. The project
runs with the production configuration the intake benchmark gives it (time trap and rate limit
relaxed); its POST stores a lead and publishes its one task to a Redis server of its own.

    BENCH_RUNS=3 BENCH_CPU_PAIRS=300 python bench/bench_request_cpu.py
"""

import os
import statistics
import time

import loadgen
import sqlalchemy as sa
from _support import Servers, prepare_database, project_env, row, setting

RUNS = setting("runs", 3)
PAIRS = setting("cpu_pairs", 300)
WARM_UP = 30
SECTION = "Intake in process (CPU per request, the app's own work)"


def _project_app(servers: Servers):
    url = servers.sqlite()
    prepare_database(url)
    os.environ.update(project_env(url, servers.redis(), web_port=5000))
    import wsgi

    return wsgi.app


def _bare_app(servers: Servers):
    os.environ["BARE_DATABASE_URL"] = f"sqlite:///{servers.work / 'bare.db'}"
    import bare_app

    engine = sa.create_engine(os.environ["BARE_DATABASE_URL"])
    bare_app.metadata.create_all(engine)
    engine.dispose()
    return bare_app.app


class Pairs:
    """GET the form, then POST it, as the load generator's clients do; CPU seconds of each."""

    def __init__(self, app, kind: str) -> None:
        self.client = app.test_client()
        self.kind = kind
        # The project's production cookies are Secure, and its CSRF check wants an HTTPS referrer.
        self.base = "https://localhost" if kind == "project" else "http://localhost"
        self.form = "/quote" if kind == "project" else "/form"
        self.number = 0

    def one(self) -> tuple[float, float]:
        self.number += 1
        started = time.process_time()
        page = self.client.get(self.base + self.form).get_data(as_text=True)
        got = time.process_time()
        hidden = dict(loadgen.HIDDEN.findall(page))
        email = f"cpu-{self.number}-{time.time_ns()}@example.org"
        if self.kind == "project":
            body = {**loadgen.ANSWERS, **hidden, "email": email, "phone": f"+45{20100000 + self.number}"}
        else:
            body = {"email": email, "details": loadgen.ANSWERS["details"], **hidden}
        posting = time.process_time()
        referrer = {"Referer": self.base + self.form}
        answer = self.client.post(self.base + self.form, data=body, headers=referrer)
        posted = time.process_time()
        if answer.status_code != 303:
            raise RuntimeError(f"{self.kind} POST answered {answer.status_code}")
        return got - started, posted - posting

    def run(self, count: int) -> tuple[float, float]:
        """Mean CPU milliseconds of a GET and of a POST over `count` pairs."""
        costs = [self.one() for _ in range(count)]
        return tuple(1000 * statistics.fmean(cost[i] for cost in costs) for i in (0, 1))


def main() -> None:
    with Servers("bench-cpu-") as servers:
        project, bare = Pairs(_project_app(servers), "project"), Pairs(_bare_app(servers), "bare")
        project.run(WARM_UP)
        bare.run(WARM_UP)
        mine, base = [], []
        for _ in range(RUNS):
            mine.append(project.run(PAIRS))
            base.append(bare.run(PAIRS))
        note = f"mean of {PAIRS} pairs × {RUNS}, SQLite"
        figures = {
            "form GET, CPU": (lambda run: run[0]),
            "stored POST, CPU": (lambda run: run[1]),
            "GET + POST, CPU": sum,
        }
        for label, figure in figures.items():
            row(SECTION, label, "ms", [figure(m) for m in mine], [figure(b) for b in base], "bare app", note)


if __name__ == "__main__":
    main()

"""Submit → first provider email through the `make run` topology: the processes of Procfile.dev
(gunicorn, the routing worker, the email worker, beat) on SQLite with a Redis of their own and an
SMTP server in this process that notes when each message arrives. Open-loop submissions at 20
leads/s for 60 s (the load generator is its own process); latency from each POST to the arrival
of the lead's first provider email. Baseline in the same run: a bare POST → INSERT → publish →
Celery task → SMTP send (bench/bare_app.py, same gunicorn and worker settings). Then the highest
steady rate at which p99 stays under 1 s, stepping the rate up: each step runs as often as the
rest (BENCH_RUNS) and counts by its median p99, since one step alone is a few dozen leads, whose
p99 is their slowest one.

    BENCH_RUNS=3 BENCH_PIPELINE_SECONDS=60 BENCH_PIPELINE_RATE=20 BENCH_PIPELINE_STEPS=2,5,10,20,30,40 \\
        python bench/bench_pipeline.py
"""

import email.parser
import itertools
import math
import statistics
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from _support import (
    BIN,
    ROOT,
    Servers,
    free_port,
    load,
    prepare_database,
    project_env,
    row,
    setting,
    wait_for_port,
)
from aiosmtpd.controller import Controller

from leads.models import EmailMessage, Lead, LeadEvent

RUNS = setting("runs", 3)
SECONDS = setting("pipeline_seconds", 60.0)
RATE = setting("pipeline_rate", 20.0)
STEPS = [float(rate) for rate in str(setting("pipeline_steps", "2,5,10,20,30,40")).split(",")]
STEP_SECONDS = setting("pipeline_step_seconds", 20.0)
LONGEST_WAIT = 60.0  # after the last submission, for the last email


class ArrivalSink:
    """SMTP handler noting when each message arrives: Message-ID and recipient -> time."""

    def __init__(self) -> None:
        self.by_message_id: dict[str, float] = {}
        self.by_recipient: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope):
        arrived = time.time()
        headers = email.parser.BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        self.by_message_id.setdefault(str(headers.get("Message-ID", "")).strip(), arrived)
        for recipient in envelope.rcpt_tos:
            self.by_recipient.setdefault(recipient.lower(), arrived)
        return "250 Message accepted for delivery"


def procfile_commands(web_port: int, work) -> dict[str, str]:
    """The web, worker, mailer and beat lines of Procfile.dev, on this run's port and folder."""
    commands = {}
    for line in (ROOT / "Procfile.dev").read_text().splitlines():
        name, _, command = line.partition(":")
        if name in {"redis", "mail"} or not command.strip():
            continue  # this bench brings its own
        command = command.replace("${DEV_WEB_PORT:-5000}", str(web_port))
        commands[name] = command.replace("var/celerybeat-schedule", str(work / "celerybeat-schedule"))
    return commands


def wait_ready(servers: Servers, names: list[str]) -> None:
    deadline = time.monotonic() + 120
    for log in (servers.work / f"{name}.log" for name in names):
        while not log.exists() or b" ready." not in log.read_bytes():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{log.name} did not become ready")
            time.sleep(0.05)


def latencies(sent: list[dict], arrival_of) -> tuple[list[float], int]:
    """Seconds from each POST to its email; and how many emails never came (within the wait)."""
    found, missing = [], 0
    for submission in sent:
        arrived = arrival_of(submission["email"])
        if arrived is None:
            missing += 1
        else:
            found.append(arrived - submission["posted"])
    return found, missing


def wait_for_emails(sent: list[dict], arrival_of) -> None:
    deadline = time.monotonic() + LONGEST_WAIT
    while time.monotonic() < deadline and any(arrival_of(s["email"]) is None for s in sent):
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def project_stack(servers: Servers, sink_port: int) -> tuple[str, callable]:
    database_url = servers.sqlite()
    prepare_database(database_url, unlimited_capacity=True)
    web_port = free_port()
    env = project_env(database_url, servers.redis(), web_port=web_port, smtp_port=sink_port)
    for name, command in procfile_commands(web_port, servers.work).items():
        servers.start(["sh", "-c", f"exec {command.strip()}"], env=env, name=name, log_name=name)
    wait_for_port(web_port, timeout=60)
    wait_ready(servers, ["worker", "mailer"])
    engine = sa.create_engine(database_url)

    def first_provider_email(message_ids_by_email: dict, sink: ArrivalSink):
        def arrival_of(address: str) -> float | None:
            times = [sink.by_message_id.get(mid) for mid in message_ids_by_email().get(address, ())]
            times = [t for t in times if t is not None]
            return min(times) if times else None

        return arrival_of

    def provider_message_ids() -> dict[str, list[str]]:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(Lead.email, EmailMessage.message_id)
                .join(EmailMessage, EmailMessage.lead_id == Lead.id)
                .where(EmailMessage.template.startswith("provider_"))
            ).all()
        found: dict[str, list[str]] = {}
        for address, message_id in rows:
            found.setdefault(address, []).append(message_id)
        return found

    def drained() -> bool:
        """Nothing left from earlier submissions: every lead routed, every email sent."""
        with engine.connect() as connection:
            waiting = connection.scalar(sa.select(sa.func.count(Lead.id)).where(Lead.status == "new"))
            unsent = connection.scalar(
                sa.select(sa.func.count(EmailMessage.id)).where(
                    EmailMessage.status.in_(["queued", "sending"])
                )
            )
        return waiting == 0 and unsent == 0

    def arrivals(sink):
        return first_provider_email(_cached(provider_message_ids), sink)

    def stages(sent: list[dict]) -> tuple[list[float], list[float]]:
        """Where the time went, from the database: seconds from the lead's row to its `routed`
        event, and from that event to its first provider email recorded sent."""
        addresses = [submission["email"] for submission in sent]
        routed_at = (
            sa.select(LeadEvent.created_at)
            .where(LeadEvent.lead_id == Lead.id, LeadEvent.to_status == "routed")
            .scalar_subquery()
        )
        first_sent = (
            sa.select(sa.func.min(EmailMessage.sent_at))
            .where(EmailMessage.lead_id == Lead.id, EmailMessage.template.startswith("provider_"))
            .scalar_subquery()
        )
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(Lead.created_at, routed_at, first_sent).where(Lead.email.in_(addresses))
            ).all()
        routing = [(_utc(r) - _utc(c)).total_seconds() for c, r, _ in rows if r is not None]
        sending = [(_utc(f) - _utc(r)).total_seconds() for _, r, f in rows if r is not None and f is not None]
        return routing, sending

    return f"http://127.0.0.1:{web_port}", arrivals, drained, stages


def _utc(moment):
    """Times as SQLite returns them (naive UTC, or text from a subquery) as aware UTC datetimes."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cached(read):
    """Re-read the database at most twice a second while waiting."""
    state = {"at": 0.0, "value": {}}

    def value():
        if time.monotonic() - state["at"] > 0.5:
            state["value"], state["at"] = read(), time.monotonic()
        return state["value"]

    return value


def bare_stack(servers: Servers, sink_port: int) -> str:
    import bare_app

    database_url = f"sqlite:///{servers.work / 'bare.db'}"
    engine = sa.create_engine(database_url)
    bare_app.metadata.create_all(engine)
    engine.dispose()
    port = free_port()
    env = {
        "BARE_DATABASE_URL": database_url,
        "BARE_REDIS_URL": servers.redis(),
        "BARE_SMTP_PORT": str(sink_port),
    }
    # Started in bench/, as bench_intake.py starts its bare app: the project's gunicorn.conf.py (read
    # from the directory gunicorn starts in) builds the project's app in the master, for its checks.
    web = f"{BIN / 'gunicorn'} --bind 127.0.0.1:{port} --workers 2 --threads 4 bare_app:app"
    worker = (
        ".venv/bin/celery --workdir bench -A bare_app:celery_app worker --concurrency 2"
        " --without-gossip --without-mingle"
    )
    bench = ROOT / "bench"
    servers.start(["sh", "-c", f"exec {web}"], env=env, cwd=bench, name="bare-web", log_name="bare-web")
    servers.start(
        ["sh", "-c", f"exec {worker} --loglevel INFO"], env=env, name="bare-worker", log_name="bare-worker"
    )
    wait_for_port(port, timeout=60)
    wait_ready(servers, ["bare-worker"])
    return f"http://127.0.0.1:{port}"


PATIENTS_PER_RUN = 100_000
FIRST_NUMBERS = itertools.count(0, PATIENTS_PER_RUN)  # each run's first patient
DRAIN_WAIT = 600.0  # for the backlog of an earlier run, before the next starts


def submit(
    base: str, kind: str, rate: float, seconds: float, arrival_of, drained=None, sent_out=None
) -> tuple[list[float], int, int]:
    """One open-loop run, started on an empty pipeline; latencies, emails never seen, errors
    (and the submissions themselves in `sent_out`, when given)."""
    deadline = time.monotonic() + DRAIN_WAIT
    while drained is not None and not drained() and time.monotonic() < deadline:
        time.sleep(1)
    extra = {} if kind == "project" else {"post_path": "/lead"}
    # Every patient of the benchmark is a new one: a phone repeated within the duplicate window
    # files the request as a duplicate, which is not routed and has no provider email.
    if rate * seconds > PATIENTS_PER_RUN:
        raise ValueError(f"a run of more than {PATIENTS_PER_RUN} submissions")
    extra["first_number"] = next(FIRST_NUMBERS)
    result = load(base, kind, "open", rate=rate, seconds=seconds, **extra)
    wait_for_emails(result["sent"], arrival_of)
    if sent_out is not None:
        sent_out.extend(result["sent"])
    found, missing = latencies(result["sent"], arrival_of)
    return found, missing, result["errors"]


def main() -> None:
    sink = ArrivalSink()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    controller.start()
    try:
        with Servers("bench-pipeline-") as servers:
            project, arrival_for, drained, stages = project_stack(servers, sink_port)
            bare = bare_stack(servers, sink_port)
            project_arrival = arrival_for(sink)

            def bare_arrival(address):
                return sink.by_recipient.get(address.lower())

            mine, base, lost, errors, routing, sending = [], [], 0, 0, [], []
            for _ in range(RUNS):
                submitted: list[dict] = []
                found, missing, failed = submit(
                    project, "project", RATE, SECONDS, project_arrival, drained, submitted
                )
                mine.append(found)
                routed, sent = stages(submitted)
                routing.append(routed)
                sending.append(sent)
                lost, errors = lost + missing, errors + failed
                found, missing, failed = submit(bare, "bare", RATE, SECONDS, bare_arrival)
                base.append(found)
                lost, errors = lost + missing, errors + failed
            note = f"{RATE:.0f}/s × {SECONDS:.0f} s × {RUNS}; no email within {LONGEST_WAIT:.0f} s: {lost}"
            note += f"; errors {errors}"
            section = "Submit → provider email"
            for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
                row(section, f"submit → first provider email {label}, {RATE:.0f} leads/s", "ms",
                    [percentile(r, q) * 1000 for r in mine], [percentile(r, q) * 1000 for r in base],
                    "bare POST→insert→publish→worker→send", note if label == "p50" else "")  # fmt: skip
            for label, runs in (
                ("submit → lead routed", routing),
                ("lead routed → first provider email sent", sending),
            ):
                for q_label, q in (("p50", 0.5), ("p99", 0.99)):
                    figures = [percentile(r, q) * 1000 for r in runs]
                    name = f"{label} {q_label}, {RATE:.0f} leads/s"
                    row(section, name, "ms", figures, None, "", "database times")
            steady, tried = 0.0, []
            for rate in STEPS:
                p99s, lost_here = [], 0
                for _ in range(RUNS):
                    found, missing, _ = submit(
                        project, "project", rate, STEP_SECONDS, project_arrival, drained
                    )
                    p99s.append(percentile(found, 0.99) * 1000 if found else math.inf)
                    lost_here += missing
                p99 = statistics.median(p99s)
                tried.append(f"{rate:.0f}/s {p99:.0f} ms" + (f" ({lost_here} lost)" if lost_here else ""))
                if lost_here or p99 >= 1000:
                    break
                steady = rate
            steps = f"{STEP_SECONDS:.0f} s × {RUNS} per step, median p99: {', '.join(tried)}"
            row(section, "highest steady rate with p99 < 1 s", "leads/s", [steady], None, "", steps)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

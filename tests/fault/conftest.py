"""The whole stack as separate processes on loopback, for the fault suite: gunicorn, a Celery
worker (prefork), beat, Redis, and an SMTP server that can answer 4xx/5xx or drop the
connection. Each test submits its own few dozen leads over HTTP, breaks something, and measures."""

import http.client
import itertools
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

import config
from config import BASE_DIR
from leads import create_app
from leads.dev.mailsink import start_sink
from leads.directory.csv_io import import_providers
from leads.extensions import db
from leads.models import AddressBounce, Assignment, EmailMessage, Lead, LeadEvent, Provider
from tests.helpers import wait_until
from tests.quote_support import VALID_ANSWERS, aged_token
from tests.servers import RedisServer, Worker, free_port, wait_for_port

# Every fault test commits to the stack's own database and talks to a second app.
pytestmark = pytest.mark.commits

TREATMENT = "neurorehabilitation-spinal-cord-injury"
CONDITION = "spinal-cord-injury-incomplete"
PROVIDERS = 4
EMAILS_PER_LEAD = 4  # three providers (ROUTING_TOP_N) and the patient's confirmation
ROUTED = ("routed", "contacted")
# Each clinic's one notification address, clinic 1's first.
CLINICS = tuple(f"clinic{number}@fault.example" for number in range(1, PROVIDERS + 1))

# The safety nets, short enough for a test to see them work.
SETTINGS = {
    "OUTBOX_GRACE_SECONDS": "1",
    "OUTBOX_SWEEP_SECONDS": "1",
    "DUE_EMAIL_SWEEP_SECONDS": "1",
    "ROUTING_SWEEP_SECONDS": "2",
    "ROUTING_RETRY_AFTER_SECONDS": "5",
    "EMAIL_SAFETY_NET_SECONDS": "5",
    # A claim holds a whole conversation of SMTP_TIMEOUT waits (config.check_conversation_fits_claim).
    "EMAIL_CLAIM_TIMEOUT_SECONDS": "20",
    "SMTP_TIMEOUT": "1",
    "EMAIL_RETRY_BASE_SECONDS": "1",
    "QUOTE_RATE_LIMIT": "100000 per minute",
    "PROVIDER_BOUNCES_BEFORE_PAUSE": "2",
    "ESCALATION_SWEEP_SECONDS": "3600",
}

FIGURES: list[str] = []


def _providers_csv() -> bytes:
    rows = [
        "name,city,region,notification_emails,languages,notification_language,weekly_capacity,treatments,conditions"
    ]
    for number in range(1, PROVIDERS + 1):
        rows.append(
            f"Fault Clinic {number},Aarhus,Midtjylland,{CLINICS[number - 1]},da; en,en,1000,"
            f"{TREATMENT}:approved,{CONDITION}"
        )
    return ("\n".join(rows) + "\n").encode()


class Stack:
    def __init__(self, root: Path, broker=None) -> None:
        self.root = root
        # A RedisServer, or anything with its url, start, stop and process (a Sentinel cluster).
        self.redis = broker or RedisServer(root / "redis")
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.database_url = f"sqlite:///{root / 'fault.db'}"
        self.env = {
            "APP_ENV": "testing",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_port),
            "BASE_URL": f"http://127.0.0.1:{self.web_port}",
            **SETTINGS,
        }
        self.worker = Worker(self.env, root / "worker.log", pool="prefork", concurrency=2)
        self.web: subprocess.Popen | None = None
        self.beats: list[subprocess.Popen] = []
        self.app = create_app(
            config.TestingConfig, SQLALCHEMY_DATABASE_URI=self.database_url, REDIS_URL=self.redis.url
        )
        self.sink = None
        self._smtp = None
        self._tags = itertools.count(1)
        self._phones = itertools.count(100_000)

    def start(self) -> None:
        from flask_migrate import upgrade

        from leads.dev import seed

        with self.app.app_context():
            upgrade()
            seed.load_taxonomy()
            import_providers(_providers_csv())
            db.session.commit()
        self.redis.start()
        self.start_smtp()
        self.web = self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "wsgi:app",
            ],
        )
        wait_for_port(self.web_port, timeout=60)
        self.worker.start()
        self.start_beat()

    def start_smtp(self) -> None:
        """The SMTP server (again: a new one on the same port, keeping its messages)."""
        self._smtp, self.sink = start_sink(self.root / "mail", port=self.smtp_port)

    def stop_smtp(self) -> None:
        """The SMTP server goes away: the conversations under way are cut, connections refused."""
        self._smtp.stop()
        self._smtp = None

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("ab")
        return subprocess.Popen(args, cwd=BASE_DIR, env=self.worker.env, stdout=log, stderr=subprocess.STDOUT)

    def start_beat(self) -> subprocess.Popen:
        number = len(self.beats) + 1
        beat = self._spawn(
            f"beat{number}",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.worker",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.root / f"beat{number}-schedule"),
            ],
        )
        self.beats.append(beat)
        return beat

    def stop_beat(self, beat: subprocess.Popen) -> None:
        _stop(beat)
        self.beats.remove(beat)

    def stop(self) -> None:
        for beat in list(self.beats):
            self.stop_beat(beat)
        self.worker.stop()
        _stop(self.web)
        self.redis.stop()
        if self._smtp is not None:
            self._smtp.stop()
        with self.app.app_context():
            db.engine.dispose()

    # --- the patient's side ---------------------------------------------------------------

    def new_tag(self, name: str) -> str:
        return f"{name}-{next(self._tags)}"

    def submit(self, tag: str, count: int, threads: int = 4) -> Counter:
        """`count` patients of the test `tag` send the form over HTTP; the answers' status codes."""
        return Counter(self.send(self.patients(tag, count), threads))

    def patients(self, tag: str, count: int) -> list[dict]:
        """The answers of `count` new patients of the test `tag`, each with a form token of its own."""
        return [
            {
                **VALID_ANSWERS,
                "full_name": f"Patient {number}",
                "email": f"{tag}-{number}@patients.example",
                "phone": f"+4520{next(self._phones):06d}",  # never the same patient twice
                "form_token": aged_token(self.app),  # one use each
            }
            for number in range(count)
        ]

    def send(self, patients: list[dict], threads: int = 4) -> list[int]:
        """Each patient's answers POSTed to the form; the status codes, in the patients' order."""

        def one(answers: dict) -> int:
            connection = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=60)
            try:
                connection.request(
                    "POST",
                    "/quote",
                    body=urllib.parse.urlencode(answers),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                return connection.getresponse().status
            finally:
                connection.close()

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, patients))

    def post(self, path: str, fields: dict) -> int:
        """A form POSTed to the web server (as a browser sends it); the status code."""
        connection = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=30)
        try:
            connection.request(
                "POST",
                path,
                body=urllib.parse.urlencode(fields, doseq=True),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            return connection.getresponse().status
        finally:
            connection.close()

    def get(self, path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=30)
        try:
            connection.request("GET", path)
            return connection.getresponse().status
        finally:
            connection.close()

    # --- what the stack did ---------------------------------------------------------------

    def _read(self, query):
        with self.app.app_context():
            try:
                return db.session.execute(query).all()
            finally:
                db.session.remove()  # hold no SQLite lock the stack needs

    def _lead_ids(self, tag: str):
        return sa.select(Lead.id).where(Lead.email.like(f"{tag}-%")).scalar_subquery()

    def leads(self, tag: str) -> list:
        return self._read(sa.select(Lead.id, Lead.email, Lead.status).where(Lead.email.like(f"{tag}-%")))

    def references(self, tag: str) -> list[str]:
        return [
            reference
            for (reference,) in self._read(sa.select(Lead.reference).where(Lead.email.like(f"{tag}-%")))
        ]

    def emails(self, tag: str) -> list:
        return self._read(
            sa.select(
                EmailMessage.id,
                EmailMessage.to_address,
                EmailMessage.status,
                EmailMessage.attempts,
                EmailMessage.message_id,
                EmailMessage.last_error,
            ).where(EmailMessage.lead_id.in_(self._lead_ids(tag)))
        )

    def assignments(self, tag: str) -> list:
        lead_ids = self._lead_ids(tag)
        return self._read(
            sa.select(Assignment.lead_id, Assignment.provider_id).where(Assignment.lead_id.in_(lead_ids))
        )

    def open_assignments(self, tag: str) -> Counter:
        """How many assignments of each of the tag's leads still wait for an answer."""
        rows = self._read(
            sa.select(Assignment.lead_id).where(
                Assignment.lead_id.in_(self._lead_ids(tag)), Assignment.status == "notified"
            )
        )
        return Counter(lead_id for (lead_id,) in rows)

    def provider(self, name: str):
        return self._read(sa.select(Provider.id, Provider.active).where(Provider.name == name))[0]

    def reactivate(self, name: str) -> None:
        with self.app.app_context():
            db.session.execute(sa.update(Provider).where(Provider.name == name).values(active=True))
            db.session.commit()
            db.session.remove()

    def set_addresses(self, name: str, addresses: list[str]) -> None:
        """Give the provider `name` these notification addresses."""
        with self.app.app_context():
            db.session.execute(
                sa.update(Provider).where(Provider.name == name).values(notification_emails=addresses)
            )
            db.session.commit()
            db.session.remove()

    def flagged(self, addresses: set[str]) -> set[str]:
        """Which of `addresses` are flagged as refusing mail (AddressBounce)."""
        rows = self._read(sa.select(AddressBounce.address).where(AddressBounce.address.in_(addresses)))
        return {address for (address,) in rows}

    def forget_flags(self, addresses: set[str]) -> None:
        with self.app.app_context():
            db.session.execute(sa.delete(AddressBounce).where(AddressBounce.address.in_(addresses)))
            db.session.commit()
            db.session.remove()

    def unhandled_bounces(self, tag: str) -> list:
        """The tag's emails refused for good (5xx) whose bounce nothing handled yet."""
        return self._read(
            sa.select(EmailMessage.id).where(
                EmailMessage.lead_id.in_(self._lead_ids(tag)),
                EmailMessage.status == "failed",
                EmailMessage.last_error.startswith("5"),
                EmailMessage.bounce_handled_at.is_(None),
            )
        )

    def events(self, tag: str, kind: str) -> list:
        lead_ids = self._lead_ids(tag)
        return self._read(
            sa.select(LeadEvent.lead_id, LeadEvent.note).where(
                LeadEvent.lead_id.in_(lead_ids), LeadEvent.kind == kind
            )
        )

    def delivered(self) -> Counter:
        """How many times the SMTP server stored each Message-ID."""
        counts = Counter()
        for path in self.sink.messages():
            match = re.search(rb"^Message-ID: *(<[^>]+>)", path.read_bytes(), re.MULTILINE | re.IGNORECASE)
            counts[match.group(1).decode()] += 1
        return counts

    def wait_until_routed(self, tag: str, count: int, timeout: float = 90) -> None:
        def routed():
            leads = self.leads(tag)
            return len(leads) == count and all(lead.status in ROUTED for lead in leads)

        wait_until(routed, timeout=timeout, interval=0.5)

    def wait_until_settled(self, tag: str, expected: int, timeout: float = 90) -> list:
        """Wait until the test's `expected` emails are all sent or failed; return them."""

        def settled():
            emails = self.emails(tag)
            done = len(emails) == expected and all(email.status in ("sent", "failed") for email in emails)
            return emails if done else None

        return wait_until(settled, timeout=timeout, interval=0.5)

    def figures(self, scenario: str, tag: str, answers: Counter) -> dict:
        """The table's figures for the leads of `tag`, printed and kept for the run's summary."""
        leads = self.leads(tag)
        emails = self.emails(tag)
        delivered = self.delivered()
        pairs = Counter(self.assignments(tag))
        figures = {
            "answers": dict(sorted(answers.items())),
            "stored": len(leads),
            "patients stored twice": len(leads) - len({lead.email for lead in leads}),
            "routed": sum(lead.status in ROUTED for lead in leads),
            "duplicate assignments": sum(n - 1 for n in pairs.values()),
            "emails": len(emails),
            "sent": sum(email.status == "sent" for email in emails),
            "failed": sum(email.status == "failed" for email in emails),
            "delivered": sum(delivered[email.message_id] for email in emails),
            "delivered twice": sum(delivered[email.message_id] > 1 for email in emails),
            "attempts": sum(email.attempts for email in emails),
        }
        line = f"{scenario}: " + ", ".join(f"{key} {value}" for key, value in figures.items())
        print(line)
        FIGURES.append(line)
        return figures


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("fault"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def healthy(stack):
    """The stack as it should be after each test: everything running, the SMTP server well."""
    yield stack
    stack.sink.reset()
    if stack._smtp is None:
        stack.start_smtp()
    if stack.redis.process is None:
        stack.redis.start()
    if stack.worker.process is None or stack.worker.process.poll() is not None:
        stack.worker.start()
    while len(stack.beats) > 1:
        stack.stop_beat(stack.beats[-1])


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("fault suite figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def in_background(target, *args) -> Future:
    """Run `target` in a thread of its own; its result comes from the returned future."""
    future = Future()

    def run():
        try:
            future.set_result(target(*args))
        except Exception as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def pause(seconds: float) -> None:
    """Let a fault last a while (the fault's duration, not a wait for a result)."""
    time.sleep(seconds)

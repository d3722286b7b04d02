"""What one request costs the database: read-only pages never take SQLite's write lock, a stored
request is one transaction (its published tasks are marked so per process and interval, or in one
bookkeeping commit when the interval is 0), the form's taxonomy comes from memory until it
changes, and the duplicate check is served by an index."""

import http.client
import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import redis
import sqlalchemy as sa

import config as project_config
import leads
from config import BASE_DIR, ConfigError
from leads import create_app
from leads.dev import seed
from leads.extensions import ReadOnlyViolation, db, look_ups_first
from leads.intake import forget_taxonomy
from leads.messaging import outbox
from leads.models import EmailMessage, Lead, OutboxMessage, Treatment
from leads.staff.operations import PRIORITY_SEPARATOR
from tests.helpers import kinds, query_plan, sqlite_statements, statements, statements_sent, wait_until
from tests.quote_support import answers, client_with_own_address
from tests.servers import Worker, free_port, wait_for_port
from tests.staff_support import signed_in_client

on_sqlite_only = pytest.mark.sqlite_only


@on_sqlite_only
@pytest.mark.commits
def test_reading_the_form_never_takes_the_write_lock(app, taxonomy):
    client = client_with_own_address(app)
    forget_taxonomy()
    with sqlite_statements() as seen:
        assert client.get("/quote").status_code == 200
    assert "BEGIN IMMEDIATE" not in seen and "BEGIN" in seen, seen
    assert kinds(seen)["SELECT"] >= 1  # the taxonomy, read once


@pytest.mark.commits
def test_a_cached_form_page_sends_no_sql_at_all(app, taxonomy):
    client = client_with_own_address(app)
    client.get("/quote")
    with statements() as seen:
        assert client.get("/quote").status_code == 200
    assert seen == []


@on_sqlite_only
@pytest.mark.commits
def test_a_stored_request_is_one_transaction_and_one_bookkeeping_commit(app, taxonomy):
    client = client_with_own_address(app)
    client.get("/quote")
    with sqlite_statements() as seen:
        assert client.post("/quote", data=answers(app)).status_code == 303
    counted = kinds(seen)
    # The look-ups in a reader's transaction; then the request's own write transaction, and one
    # recording both published tasks (route + email).
    assert counted["BEGIN"] == 1 and counted["BEGIN IMMEDIATE"] == 2, seen
    reads = seen[seen.index("BEGIN") + 1 : seen.index("ROLLBACK")]
    assert reads and all(s.startswith("SELECT") for s in reads), reads
    # The form's key and the new reference are left to their unique constraints, not looked up.
    assert not [s for s in reads if "submission_key =" in s or "reference =" in s], reads
    # The write lock is held for the writes alone: nothing is read under it.
    begun = seen.index("BEGIN IMMEDIATE")
    writes = seen[begun + 1 : seen.index("COMMIT", begun)]
    assert writes and all(s.startswith(("INSERT", "PRAGMA busy_timeout")) for s in writes), writes
    # lead, consent, event, email; then both tasks (routing, the email's) in one statement
    assert kinds(writes)["INSERT"] == 5, writes
    assert len([s for s in writes if s.startswith("INSERT INTO outbox_message")]) == 1, writes
    outbox_updates = [s for s in seen if s.startswith("UPDATE outbox_message")]
    assert len(outbox_updates) == 1, outbox_updates
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .where(sa.text("dispatched_at IS NULL"))
            .select_from(sa.table("outbox_message"))
        )
        == 0
    )


def _unmarked_rows() -> int:
    count = db.session.scalar(
        sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.dispatched_at.is_(None))
    )
    db.session.rollback()
    return count


@on_sqlite_only
@pytest.mark.commits
def test_with_an_interval_a_stored_request_is_one_transaction_and_the_marks_come_in_one_update(
    app, taxonomy, redis_server
):
    queue = redis.Redis.from_url(redis_server.url)
    queue.flushdb()
    marking_app = create_app(project_config.TestingConfig, OUTBOX_RECORD_INTERVAL_SECONDS=3600)
    client = client_with_own_address(marking_app)  # its process thread stays asleep
    with marking_app.app_context(), sqlite_statements() as seen:
        for number in range(3):
            data = answers(app, email=f"patient{number}@example.org", phone=f"+452010000{number}")
            assert client.post("/quote", data=data).status_code == 303
    counted = kinds(seen)
    # Per request one write transaction; the reads in readers' transactions (rolled back): each
    # request's look-ups, and the taxonomy this new app reads at its first form.
    assert counted["BEGIN IMMEDIATE"] == 3 and counted["COMMIT"] == 3, seen
    assert counted["BEGIN"] == 4 and counted["ROLLBACK"] == 4, (counted, seen)
    assert not [s for s in seen if s.startswith("UPDATE outbox_message")]
    # Published at once (one message per form: its routing task, which carries the confirmation
    # to the email queue), marked later.
    later = f"{outbox.EMAIL_QUEUE}{PRIORITY_SEPARATOR}{outbox.LATER_PRIORITY}"
    assert queue.llen(outbox.ROUTING_QUEUE) == 3 and queue.llen(later) == 0
    assert _unmarked_rows() == 3
    log = outbox.PublishedLog.of(marking_app)
    assert log.pending() == 3

    with marking_app.app_context(), statements() as seen:
        assert log.flush() == 3
    assert len([s for s in seen if s.startswith("UPDATE outbox_message")]) == 1
    assert _unmarked_rows() == 0 and log.pending() == 0
    attempts = db.session.scalars(sa.select(OutboxMessage.attempts)).all()
    assert attempts == [1] * 3


@pytest.mark.commits
def test_the_process_marks_what_it_published_within_its_interval(app, taxonomy, redis_server):
    redis.Redis.from_url(redis_server.url).flushdb()
    marking_app = create_app(project_config.TestingConfig, OUTBOX_RECORD_INTERVAL_SECONDS=0.05)
    assert client_with_own_address(marking_app).post("/quote", data=answers(app)).status_code == 303
    wait_until(lambda: _unmarked_rows() == 0, timeout=10)
    assert outbox.PublishedLog.of(marking_app).pending() == 0


@pytest.mark.commits
def test_marks_the_database_refused_are_kept_for_the_next_flush(app, taxonomy, redis_server, monkeypatch):
    redis.Redis.from_url(redis_server.url).flushdb()
    marking_app = create_app(project_config.TestingConfig, OUTBOX_RECORD_INTERVAL_SECONDS=3600)
    assert client_with_own_address(marking_app).post("/quote", data=answers(app)).status_code == 303
    log = outbox.PublishedLog.of(marking_app)
    real_execute = db.session.execute

    def locked(*args, **kwargs):
        raise sa.exc.OperationalError(
            "UPDATE outbox_message", None, sqlite3.OperationalError("database is locked")
        )

    monkeypatch.setattr(db.session, "execute", locked)
    assert log.flush() == 0 and log.pending() == 1
    monkeypatch.setattr(db.session, "execute", real_execute)
    assert log.flush() == 1 and _unmarked_rows() == 0


def test_publishing_several_tasks_records_them_in_one_statement(app, redis_server):
    redis.Redis.from_url(redis_server.url).flushdb()
    for _ in range(3):
        outbox.add_task(outbox.SWEEP_OUTBOX)
    with statements() as seen:
        db.session.commit()
    assert len([s for s in seen if s.startswith("UPDATE outbox_message")]) == 1
    assert not [s for s in seen if s.startswith("SELECT")], "the fast path knows what it publishes"
    assert redis.Redis.from_url(redis_server.url).llen(outbox.ROUTING_QUEUE) == 3


def test_emails_and_routing_travel_in_separate_queues(app, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    outbox.add_task(outbox.SEND_EMAIL, email_id=1)
    outbox.add_task(outbox.ROUTE_LEAD, lead_id=1)
    db.session.commit()

    def names(queue):
        return [json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1)]

    assert names(outbox.EMAIL_QUEUE) == [outbox.SEND_EMAIL]
    assert names(outbox.ROUTING_QUEUE) == [outbox.ROUTE_LEAD]


def test_a_read_only_request_that_writes_is_an_error_and_writes_nothing(app, taxonomy):
    treatment = db.session.scalar(sa.select(Treatment).limit(1))
    with app.test_request_context("/quote", method="GET"):
        treatment.name = "Renamed by a GET"
        with pytest.raises(ReadOnlyViolation, match="GET /quote is read-only"):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(ReadOnlyViolation):
            db.session.execute(sa.update(Treatment).values(name="Renamed by a GET"))
        db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).where(Treatment.name == "Renamed by a GET")) == 0
    with app.test_request_context("/quote", method="POST"):  # the same write in a POST is allowed
        db.session.execute(sa.update(Treatment).where(Treatment.id == treatment.id).values(name="Renamed"))
    assert db.session.get(Treatment, treatment.id).name == "Renamed"


@pytest.mark.pg
@pytest.mark.commits
def test_a_write_among_the_look_ups_is_an_error_and_an_open_transaction_is_left_to_its_owner(app, taxonomy):
    db.session.commit()
    treatment = db.session.scalar(sa.select(Treatment).limit(1))
    db.session.commit()
    with pytest.raises(ReadOnlyViolation, match="look-ups"), look_ups_first():
        db.session.execute(sa.update(Treatment).values(name="Renamed among the look-ups"))
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).where(Treatment.name.like("Renamed%"))) == 0
    # Begun by its caller, a transaction stays open with what it wrote.
    db.session.execute(sa.update(Treatment).where(Treatment.id == treatment.id).values(name="Renamed before"))
    with look_ups_first():
        assert (
            db.session.scalar(sa.select(Treatment.name).where(Treatment.id == treatment.id))
            == "Renamed before"
        )
    assert db.session().in_transaction()
    db.session.commit()
    assert (
        db.session.scalar(sa.select(Treatment.name).where(Treatment.id == treatment.id)) == "Renamed before"
    )


def test_an_admin_edit_of_the_taxonomy_shows_on_the_form_at_once(app, taxonomy):
    patient = client_with_own_address(app)
    assert "Renamed for the cache test" not in patient.get("/quote").get_data(as_text=True)
    admin, _ = signed_in_client(app, role="admin")
    treatment = db.session.scalar(sa.select(Treatment).filter_by(slug="stem-cell-als"))
    conditions = [c.slug for c in treatment.conditions]
    db.session.rollback()
    response = admin.post(
        f"/staff/admin/taxonomy/treatments/{treatment.id}/edit",
        data={
            "name": "Renamed for the cache test",
            "evidence_status": treatment.evidence_status,
            "active": "y",
            "conditions": conditions,
        },
    )
    assert response.status_code == 302
    assert "Renamed for the cache test" in patient.get("/quote").get_data(as_text=True)


def test_a_change_made_elsewhere_shows_once_the_cache_is_older_than_its_limit(app, taxonomy):
    patient = client_with_own_address(app)
    patient.get("/quote")
    # Another process's change: this process's session never saw it.
    db.session.execute(sa.update(Treatment).filter_by(slug="stem-cell-als").values(name="Changed elsewhere"))
    db.session.commit()
    app.config["TAXONOMY_CACHE_SECONDS"] = 3600
    assert "Changed elsewhere" not in patient.get("/quote").get_data(as_text=True)
    app.config["TAXONOMY_CACHE_SECONDS"] = 0
    assert "Changed elsewhere" in patient.get("/quote").get_data(as_text=True)


def test_a_treatment_withdrawn_while_the_cache_still_offers_it_is_refused_at_submission(app, taxonomy):
    patient = client_with_own_address(app)
    patient.get("/quote")
    app.config["TAXONOMY_CACHE_SECONDS"] = 3600
    db.session.execute(
        sa.update(Treatment).filter_by(slug="neurorehabilitation-spinal-cord-injury").values(active=False)
    )
    db.session.commit()
    response = patient.post("/quote", data=answers(app))
    assert response.status_code == 422
    assert "That treatment is no longer offered" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 0


@on_sqlite_only
def test_the_form_looks_up_offer_and_duplicate_in_one_statement_through_the_email_index(app, taxonomy):
    patient = client_with_own_address(app)
    patient.get("/quote")  # the taxonomy, read once per process
    with statements() as seen:
        assert patient.post("/quote", data=answers(app)).status_code == 303
    selects = [s for s in seen if s.startswith("SELECT")]
    assert len(selects) == 1, selects
    plan = db.session.execute(sa.text("EXPLAIN QUERY PLAN " + selects[0].replace("?", "'x'"))).all()
    details = " ".join(row[-1] for row in plan)
    assert "ix_lead_email_key" in details, details


@pytest.mark.pg
@pytest.mark.pg_only
def test_on_postgresql_the_duplicate_check_is_served_by_the_email_index(app, taxonomy):
    # A month of other patients' requests, counted by the planner: on a near-empty table it may
    # read the window by its date instead, as cheap there and whatever earlier tests left behind.
    treatment = db.session.scalar(sa.select(Treatment).filter_by(slug=answers(app)["treatment"]))
    condition_id = treatment.conditions[0].id
    now = datetime.now(UTC)
    db.session.execute(
        sa.insert(Lead),
        [
            {
                "reference": f"Q-P{number:05d}", "full_name": "Someone",
                "email": f"other{number}@example.org", "email_key": f"other{number}@example.org",
                "phone": f"+4530{number:06d}", "country": "DE", "treatment_id": treatment.id,
                "condition_id": condition_id, "timeframe": "3-6-months", "budget": "20000-50000-eur",
                "contact_preference": "email", "created_at": now - timedelta(minutes=number),
            }
            for number in range(3000)
        ],
    )  # fmt: skip
    db.session.commit()
    db.session.execute(sa.text("ANALYZE lead"))
    db.session.commit()
    patient = client_with_own_address(app)
    patient.get("/quote")  # the taxonomy, read once per process
    with statements_sent("SELECT") as seen:
        assert patient.post("/quote", data=answers(app, email="ØRSTED@example.org")).status_code == 303
    [(statement, parameters)] = seen
    plan = query_plan(statement, parameters)
    assert "ix_lead_email_key" in plan, plan


def _hold_write_lock(seconds: float) -> threading.Thread:
    """Another process's writer: takes SQLite's write lock and releases it after `seconds`."""
    other = sqlite3.connect(db.engine.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    thread = threading.Timer(seconds, lambda: (other.execute("COMMIT"), other.close()))
    thread.start()
    return thread


@on_sqlite_only
@pytest.mark.commits
def test_a_writer_waits_for_the_write_lock_and_then_writes(app):
    holder = _hold_write_lock(0.3)
    outbox.add_task(outbox.SWEEP_OUTBOX)
    db.session.commit()  # began while the lock was held: waited for it
    holder.join()
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1


@on_sqlite_only
@pytest.mark.commits
def test_a_writer_that_cannot_get_the_lock_in_time_fails_cleanly(app, monkeypatch):
    monkeypatch.setattr(leads, "SQLITE_BUSY_MS", 50)
    holder = _hold_write_lock(1.0)
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        outbox.add_task(outbox.SWEEP_OUTBOX)  # written at once: it waits for the lock here
        db.session.commit()
    db.session.rollback()
    holder.join()
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_a_negative_or_unreadable_taxonomy_cache_setting_stops_the_app_with_its_name(app, monkeypatch):
    with pytest.raises(ConfigError, match="TAXONOMY_CACHE_SECONDS must not be negative"):
        create_app(project_config.TestingConfig, TAXONOMY_CACHE_SECONDS=-1)
    monkeypatch.setenv("TAXONOMY_CACHE_SECONDS", "half a minute")
    with pytest.raises(ConfigError, match="TAXONOMY_CACHE_SECONDS must be a whole number"):
        create_app(project_config.TestingConfig)


@pytest.mark.commits
def test_a_web_process_stopping_marks_what_it_published_before_it_exits(
    app, taxonomy, test_env, redis_server, tmp_path
):
    redis.Redis.from_url(redis_server.url).flushdb()
    env = {
        **os.environ,
        **test_env,
        "QUOTE_MIN_FILL_SECONDS": "0",
        "QUOTE_RATE_LIMIT": "100000 per minute",
        "OUTBOX_RECORD_INTERVAL_SECONDS": "3600",  # only the exit marks them
    }
    port = free_port()
    log = (tmp_path / "web.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "wsgi:app"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=60)
        for number in range(2):
            data = answers(app, email=f"stopping{number}@example.org", phone=f"+452030000{number}")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(
                "POST",
                "/quote",
                body=urlencode(data),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert connection.getresponse().status == 303
            connection.close()
        assert _unmarked_rows() == 2  # one task per form
    finally:
        web.terminate()
        web.wait(timeout=30)
    assert _unmarked_rows() == 0


@pytest.mark.commits
def test_a_worker_process_marks_what_its_tasks_published_once_per_interval_and_as_it_stops(
    app, taxonomy, test_env, redis_server, mail_sink, tmp_path
):
    """The routing task's publish of its provider emails is marked by the pool process's log, not
    by one more write transaction per routing; a pool process stopping marks what it holds."""
    seed.load_demo_providers()
    db.session.commit()
    redis.Redis.from_url(app.config["REDIS_URL"]).flushdb()  # nothing left by earlier tests
    env = {**test_env, "REDIS_URL": app.config["REDIS_URL"], "OUTBOX_RECORD_INTERVAL_SECONDS": "3600"}
    worker = Worker(env, tmp_path / "worker.log", pool="prefork", concurrency=1)
    worker.start()
    try:
        assert client_with_own_address(app).post("/quote", data=answers(app)).status_code == 303
        assert _unmarked_rows() == 0  # this process marks its own at once (interval 0)

        def providers_emailed():
            sent = db.session.scalar(
                sa.select(sa.func.count(EmailMessage.id)).where(
                    EmailMessage.template == "provider_notification", EmailMessage.status == "sent"
                )
            )
            db.session.rollback()
            return sent > 0

        wait_until(providers_emailed, timeout=30)  # published on the routing task's fast path
        unmarked = db.session.scalars(
            sa.select(OutboxMessage.task_name).where(OutboxMessage.dispatched_at.is_(None))
        ).all()
        db.session.rollback()
        assert unmarked == [outbox.SEND_PROVIDER_EMAILS]
    finally:
        worker.stop()
    assert _unmarked_rows() == 0

"""Faults during a quote request: the database failing mid-request or at commit stores nothing
and answers a clear 503 with the answers kept; a broker outage does not touch the patient."""

import html
import re
import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from leads.models import OutboxMessage
from tests.quote_support import (
    NOTHING_STORED,
    answers,
    client_with_own_address,
    restart_redis_and_wait_for_the_limiter,
    stored_counts,
)

# Faults are injected on the real COMMIT, which a test transaction would turn into a savepoint release.
pytestmark = pytest.mark.commits


@pytest.fixture
def client(app, taxonomy):
    return client_with_own_address(app)


def _database_gone(message: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("(fault injected by the test)", {}, Exception(message))


@contextmanager
def failing_statement(prefix: str):
    """Make the database refuse the first statement starting with `prefix`, as a full disk would."""

    def fail(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(prefix):
            raise _database_gone("disk I/O error")

    sa.event.listen(db.engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", fail)


@contextmanager
def failing_commit():
    """Make every COMMIT fail, as a lost connection at the worst moment would."""

    def fail(conn):
        raise _database_gone("server closed the connection unexpectedly")

    sa.event.listen(db.engine, "commit", fail)
    try:
        yield
    finally:
        sa.event.remove(db.engine, "commit", fail)


def _assert_clear_503_with_answers_kept(response):
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 503
    assert "We could not save your request just now because of a problem on our side" in page
    assert "nothing has been saved" in page
    assert re.search(r'name="full_name"[^>]*value="Freja Ørsted"', page)
    assert "Injured at C6 two years ago" in page
    assert "Traceback" not in page and "OperationalError" not in page


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO LEAD_EVENT",
        "INSERT INTO CONSENT",
        "INSERT INTO OUTBOX_MESSAGE",
        "INSERT INTO EMAIL_MESSAGE",
    ],
)
def test_the_database_failing_mid_request_stores_nothing_and_answers_503(client, app, statement):
    with failing_statement(statement):
        response = client.post("/quote", data=answers(app))
    _assert_clear_503_with_answers_kept(response)
    assert stored_counts() == NOTHING_STORED


def test_the_commit_failing_stores_nothing_and_answers_503(client, app):
    with failing_commit():
        response = client.post("/quote", data=answers(app))
    _assert_clear_503_with_answers_kept(response)
    assert stored_counts() == NOTHING_STORED


def test_after_a_database_failure_the_same_form_can_be_sent_again(client, app):
    data = answers(app)
    with failing_commit():
        assert client.post("/quote", data=data).status_code == 503
    assert client.post("/quote", data=data).status_code == 303
    assert stored_counts()["Lead"] == 1


@pytest.mark.pg
@pytest.mark.pg_only  # PostgreSQL's lock_timeout; SQLite's own wait is SQLITE_BUSY_MS (the fault suite)
def test_a_table_locked_past_the_web_lock_timeout_answers_503_with_the_answers_kept(client, app):
    app.config["DATABASE_WEB_LOCK_TIMEOUT"] = 1
    data = answers(app)
    with db.engine.connect() as migration:
        # As a migration altering the table holds it, for longer than any patient should wait.
        migration.exec_driver_sql("LOCK TABLE lead IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = client.post("/quote", data=data)
        waited = time.monotonic() - started
        migration.rollback()
    _assert_clear_503_with_answers_kept(response)
    assert 1 <= waited < 5, "the request waited for the lock as long as DATABASE_WEB_LOCK_TIMEOUT"
    assert stored_counts() == NOTHING_STORED
    assert client.post("/quote", data=data).status_code == 303


def test_an_unreachable_database_answers_a_plain_503_page(app, taxonomy, tmp_path):
    unreachable = create_app(
        config.TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/no/such/dir/leads.db"
    )
    client = client_with_own_address(unreachable)
    for response in (client.get("/quote"), client.post("/quote", data=answers(unreachable))):
        page = response.get_data(as_text=True)
        assert response.status_code == 503
        assert "The service is busy for a moment" in page and "Traceback" not in page


def test_a_broker_outage_does_not_affect_the_patient(client, app, redis_server):
    redis_server.stop()
    response = client.post("/quote", data=answers(app))
    assert response.status_code == 303 and response.headers["Location"] == "/quote/thanks"
    counts = stored_counts()
    # Routing, and the confirmation it carries, wait for the sweep.
    assert counts["Lead"] == 1 and counts["OutboxMessage"] == 1
    restart_redis_and_wait_for_the_limiter(app, redis_server)


def test_bookkeeping_failing_after_the_commit_still_thanks_the_patient_and_the_sweep_publishes(client, app):
    # The UPDATE that records a published message runs after the lead's commit; a locked or
    # restarting database refuses it. The lead is stored, so the patient must see the thanks.
    with failing_statement("UPDATE OUTBOX_MESSAGE"):
        response = client.post("/quote", data=answers(app))

    assert response.status_code == 303 and response.headers["Location"] == "/quote/thanks"
    counts = stored_counts()
    assert counts["Lead"] == 1 and counts["OutboxMessage"] == 1
    assert client.get("/quote/thanks").status_code == 200
    waiting = db.session.scalar(
        sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))
    )
    assert waiting >= 1  # left for the sweep: nothing is lost

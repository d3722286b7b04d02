"""PostgreSQL connections the server ended while they sat in the pool are replaced before anyone
uses them; a healthy connection in use a moment ago costs no ping, one idle for longer is pinged."""

from types import SimpleNamespace

import psycopg
import pytest
import sqlalchemy as sa

from leads import connections
from leads.extensions import db
from leads.models import Lead
from tests.helpers import wait_until
from tests.quote_support import answers, client_with_own_address
from workers import tasks

# pg: the PostgreSQL pass of `make test` selects its tests with `-m pg`; pg_only keeps them out of SQLite's.
pytestmark = [pytest.mark.pg, pytest.mark.pg_only, pytest.mark.commits]


@pytest.fixture
def pings(monkeypatch):
    """How many round-trip pings the pool made (SQLAlchemy's own ping of the dialect)."""
    dialect = db.engine.dialect
    made = []
    real_ping = dialect.do_ping

    def counted(dbapi_connection):
        made.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return made


def _backend_pid() -> int:
    with db.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _terminate(pid: int) -> None:
    """End a session from the server's side, as a restart or an administrator does."""
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        def gone() -> bool:
            found = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            return found.fetchone()[0] == 0

        wait_until(gone, timeout=5)


@pytest.fixture
def one_pooled_connection(app):
    """The pool emptied, then holding one connection, back in the pool: its server process id."""
    db.engine.dispose()
    yield _backend_pid()
    db.engine.dispose()


def test_a_connection_in_use_a_moment_ago_leaves_the_pool_without_a_ping(one_pooled_connection, pings):
    assert _backend_pid() == one_pooled_connection
    assert pings == []


def test_a_connection_the_server_ended_a_moment_ago_is_replaced(one_pooled_connection, pings):
    _terminate(one_pooled_connection)
    assert _backend_pid() != one_pooled_connection
    # Its last message waited on the socket: that connection alone was pinged, found dead, closed.
    assert len(pings) == 1 and pings[0].closed


def test_an_idle_connection_is_pinged_and_replaced_when_the_server_ended_it(
    one_pooled_connection, pings, monkeypatch
):
    monkeypatch.setattr(connections, "PING_AFTER_IDLE_SECONDS", 0.0)
    _terminate(one_pooled_connection)
    assert _backend_pid() != one_pooled_connection
    assert pings and pings[0].closed, "the ended connection was pinged, found dead and closed"


def test_a_form_sent_after_the_server_ended_the_web_connection_is_stored(app, taxonomy):
    client = client_with_own_address(app)
    client.get("/quote")
    db.session.remove()
    for pid in {_backend_pid() for _ in range(db.engine.pool.checkedin())}:
        _terminate(pid)
    response = client.post("/quote", data=answers(app))
    assert response.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count(Lead.id))) == 1


def _limits() -> tuple[str, str]:
    with db.engine.connect() as connection:
        return (
            connection.exec_driver_sql("SHOW statement_timeout").scalar_one(),
            connection.exec_driver_sql("SHOW lock_timeout").scalar_one(),
        )


def test_each_kind_of_work_gets_its_statement_and_lock_timeouts(app, one_pooled_connection):
    assert _limits() == ("0", "0")  # a command (migrations): the server's own, none
    with app.test_request_context("/quote"):
        assert _limits() == ("20s", "10s")  # below gunicorn's 30 s: the 503 page comes first
    with connections.running_a_task():
        assert _limits() == ("4min", "30s")  # below the task's soft time limit
    assert _backend_pid() == one_pooled_connection  # one connection, set again for each kind
    _terminate(one_pooled_connection)
    with app.test_request_context("/quote"):
        assert _limits() == ("20s", "10s")  # its replacement too


def test_the_timeouts_hold_after_a_rollback_and_follow_the_settings(app, one_pooled_connection):
    app.config.update(DATABASE_WEB_STATEMENT_TIMEOUT=1.5, DATABASE_WEB_LOCK_TIMEOUT=0)
    with app.test_request_context("/quote"):
        with db.engine.connect() as connection:
            connection.rollback()
        assert _limits() == ("1500ms", "0")


def test_the_worker_runs_each_task_with_the_task_timeouts(app, one_pooled_connection, monkeypatch):
    seen = []

    def refresh(*_):
        seen.append(_limits())
        return SimpleNamespace(changed=0, filled=0, written=0)

    monkeypatch.setattr(tasks.stats_summary, "refresh", refresh)
    tasks.refresh_stats_summaries()  # as the worker calls it
    assert seen == [("4min", "30s")]

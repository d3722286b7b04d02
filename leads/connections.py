"""PostgreSQL connections are checked as they leave the pool, without a round trip when they were
in use a moment ago.

A server that restarts, or ends a session (`pg_terminate_backend`, an idle timeout), tells each
client by a last message and then closes the socket; both wait unread in the socket of a pooled
connection. So a connection checked back in less than PING_AFTER_IDLE_SECONDS ago is checked by
looking whether anything waits on its socket, which costs no round trip, and pinged only if
something does (an idle session is sent nothing else). One idle for longer is pinged,
as SQLAlchemy's `pool_pre_ping` pings every connection, because a connection left alone may also
have been dropped silently on the way (a firewall, a failover). A connection found dead is
replaced by the pool before anyone uses it (SQLAlchemy's DisconnectionError).

Under load a connection is almost never idle for a second, so a busy web process makes one round
trip less per request. What it gives up: a connection the server closed in the very moment before
its checkout, whose last message has not reached the socket yet, fails in its first statement.
The request answers that the database is unavailable, stores nothing, and SQLAlchemy replaces
every connection of the pool, as it does for any lost connection.

Each connection also gets the statement and lock timeouts of the work it leaves the pool for
(`limit_statements`): a web request's, short enough for the 503 page to come before gunicorn's
timeout; a task's, below its soft time limit; a command's (migrations) none.
"""

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa
from flask import current_app, has_request_context

PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "idle_since"
_LIMITS = "statement_limits"


def check_postgresql_connections(engine: sa.Engine) -> None:
    """Check each connection of `engine` as it leaves the pool (see the module's docstring)."""
    dialect = engine.dialect

    @sa.event.listens_for(engine, "connect")
    def _connected(dbapi_connection, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy):
        idle = time.monotonic() - record.info.get(_IDLE_SINCE, 0.0)
        try:
            quiet = idle <= PING_AFTER_IDLE_SECONDS and _nothing_waiting(dbapi_connection)
            alive = quiet or bool(dialect.do_ping(dbapi_connection))
        except (dialect.loaded_dbapi.Error, OSError, ValueError):
            alive = False
        if not alive:
            raise sa.exc.DisconnectionError("the server closed the connection while it was in the pool")


def _nothing_waiting(dbapi_connection) -> bool:
    """Whether the connection is open and nothing waits unread on its socket (one `select`, no
    round trip). An idle session is sent nothing, so anything waiting is worth a ping."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return False
    readable, _, _ = select.select([dbapi_connection.pgconn.socket], [], [], 0)
    return not readable


_running_a_task: ContextVar[bool] = ContextVar("running_a_task", default=False)


@contextmanager
def running_a_task() -> Iterator[None]:
    """The statements run inside are a Celery task's (the worker runs each task inside)."""
    token = _running_a_task.set(True)
    try:
        yield
    finally:
        _running_a_task.reset(token)


def limit_statements(engine: sa.Engine) -> None:
    """Give each connection of `engine` the statement and lock timeouts of the work it leaves the
    pool for: a web request's (DATABASE_WEB_*) or a task's (DATABASE_TASK_*).

    Other work (migrations and every other command, a process's own threads) asks for none and
    leaves a connection as it is: a command's never had any, and a web or worker process's threads
    run short statements. The timeouts are set on the session, once per connection (one round trip,
    and again only when the work changes), so they hold for every transaction on it.
    """
    dialect = engine.dialect

    @sa.event.listens_for(engine, "checkout")
    def _limit(dbapi_connection, record, proxy):
        wanted = _limits_for_this_work()
        if not wanted or record.info.get(_LIMITS) == wanted:
            return
        try:
            _set_on_session(dbapi_connection, wanted)
        except (dialect.loaded_dbapi.Error, OSError) as exc:
            raise sa.exc.DisconnectionError("could not set the statement limits") from exc
        record.info[_LIMITS] = wanted


def _limits_for_this_work() -> tuple[tuple[str, str], ...]:
    if has_request_context():
        kind = "WEB"
    elif _running_a_task.get():
        kind = "TASK"
    else:
        return ()
    config = current_app.config
    limits = (
        ("statement_timeout", config[f"DATABASE_{kind}_STATEMENT_TIMEOUT"]),
        ("lock_timeout", config[f"DATABASE_{kind}_LOCK_TIMEOUT"]),
    )
    return tuple((name, f"{round(seconds * 1000)}ms") for name, seconds in limits if seconds)


def _set_on_session(dbapi_connection, limits: tuple[tuple[str, str], ...]) -> None:
    """SET each limit for the session, outside any transaction, so no rollback takes it back."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        calls = ", ".join("set_config(%s, %s, false)" for _ in limits)
        dbapi_connection.execute(f"SELECT {calls}", [value for limit in limits for value in limit])
    finally:
        if not dbapi_connection.closed:
            dbapi_connection.autocommit = autocommit

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
"""

import select
import time

import sqlalchemy as sa

PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "idle_since"


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

"""Extension objects, unbound; the factory binds them to the app."""

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

import redis
import sqlalchemy as sa
from flask import current_app, has_request_context, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from redis.sentinel import Sentinel
from sqlalchemy.orm import DeclarativeBase, Session, registry

from config import sentinel_addresses, sentinel_password
from leads.timeutil import UTCDateTime

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()


def client_key() -> str:
    """The client a rate limit or the sign-in throttle counts: its address, but for IPv6 its /64
    network. A /64 is the block one home, phone or server is given, and its holder can send from
    any of its addresses: counted one by one, each would bring a fresh allowance of guesses. An
    IPv4 address written as IPv6 (::ffff:192.0.2.1) is the IPv4 client."""
    address = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


limiter = Limiter(key_func=client_key)
babel = Babel()


def broker_redis(timeout: float = 1.0) -> redis.Redis:
    """A client of the app's Redis (the broker), through Sentinel when REDIS_URL names it."""
    config = current_app.config
    addresses = sentinel_addresses(config["REDIS_URL"])
    if addresses is None:
        return redis.Redis.from_url(
            config["REDIS_URL"], socket_connect_timeout=timeout, socket_timeout=timeout
        )
    sentinel = Sentinel(addresses, socket_connect_timeout=timeout, socket_timeout=timeout)
    return sentinel.master_for(
        config["REDIS_SENTINEL_MASTER"],
        password=sentinel_password(config["REDIS_URL"]),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )


# GET pages of these blueprints only read; every other request, task and command may write.
READ_ONLY_BLUEPRINTS = frozenset({"public", "health", "auth", "self_service"})
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@limiter.request_filter
def _reads_are_not_limited() -> bool:
    """Every rate limit is on a POST (the forms that write); a read skips the limiter's work.

    Without this the limiter resolves and evaluates the route's limits for every GET only to find
    none apply: about a tenth of the quote form's GET. A limit on a read would need this lifted.
    """
    return request.method in READ_ONLY_METHODS


class ReadOnlyViolation(RuntimeError):
    """A unit of work declared read-only tried to write (see READ_ONLY_BLUEPRINTS)."""


def unit_of_work_writes() -> bool:
    """Whether the current unit of work may write, decided before its first statement.

    On SQLite a writer takes the write lock at BEGIN (IMMEDIATE) and a reader never does, so
    readers never wait on writers and no transaction ever upgrades a read lock (which SQLite
    answers with "database is locked" under concurrent writes instead of waiting).
    """
    if _looking_up.get():
        return False
    if not has_request_context():
        return True  # tasks, commands, the outbox relay
    return request.method not in READ_ONLY_METHODS or request.blueprint not in READ_ONLY_BLUEPRINTS


_looking_up: ContextVar[bool] = ContextVar("looking_up", default=False)


@contextmanager
def look_ups_first() -> Iterator[None]:
    """Run a writing unit of work's reads before its writes, the write lock not held for them.

    On SQLite a writer holds the one write lock from its BEGIN to its COMMIT, so reads done inside
    its transaction make every other writer wait on them too. Inside the block the unit of work is
    a reader's (a plain BEGIN; a write is an error, ReadOnlyViolation); at its end that transaction
    ends, and the writes that follow begin the writer's. On PostgreSQL, where readers and writers
    do not wait on each other, the reads stay in the transaction the writes continue.

    Meant for the start of a unit of work: in a transaction already begun, the reads join it and
    it is left open. What the reads found is to be kept as plain values (on SQLite, what they
    loaded is expired at the block's end). A check the reads made can be overtaken before the
    writes: the constraints that matter are the database's (unique keys).
    """
    began = not db.session().in_transaction()
    token = _looking_up.set(True)
    try:
        yield
    finally:
        _looking_up.reset(token)
        if began and db.session.get_bind().dialect.name == "sqlite":
            db.session.rollback()


def flush_unless_taken(taken: Callable[[], Exception | None]) -> None:
    """Flush the session's changes. When a unique key refuses them (another request saved the same
    name between this one's check and its insert), roll back and raise the error `taken` finds now,
    the one that check gives; anything else a key refuses is raised as it came."""
    try:
        db.session.flush()
    except sa.exc.IntegrityError:
        db.session.rollback()
        error = taken()
        if error is None:
            raise
        raise error from None


def refuse_if_read_only() -> None:
    """ReadOnlyViolation unless the current unit of work may write: called by the ORM's hooks
    below, and by code that writes with prepared statements on the session's connection."""
    if not unit_of_work_writes():
        raise ReadOnlyViolation(f"{_unit_of_work()} is read-only but tried to write")


def _refuse_flush(session: Session, flush_context, instances) -> None:
    if session.new or session.dirty or session.deleted:
        refuse_if_read_only()


def _refuse_statement(orm_execute_state) -> None:
    if orm_execute_state.is_insert or orm_execute_state.is_update or orm_execute_state.is_delete:
        refuse_if_read_only()


def _unit_of_work() -> str:
    if _looking_up.get():
        return "a block of look-ups (look_ups_first)"
    return f"{request.method} {request.path}"


def guard_read_only_requests() -> None:
    """Make a write in a read-only request an error on every database, not a lock upgrade on SQLite."""
    if not sa.event.contains(Session, "before_flush", _refuse_flush):
        sa.event.listen(Session, "before_flush", _refuse_flush)
        sa.event.listen(Session, "do_orm_execute", _refuse_statement)


_durable_commits: ContextVar[bool] = ContextVar("durable_commits", default=True)


@contextmanager
def commits_a_power_loss_may_undo() -> Iterator[None]:
    """Transactions begun inside record only what is safely done again if a power loss or an
    operating-system crash undoes them (an email's claim or outcome: the email goes again, with
    the same Message-ID; a task marked published: the sweep publishes it again, and every task is
    idempotent). Their commits skip the flush to disk (SQLite's synchronous=NORMAL, PostgreSQL's
    synchronous_commit off); a process that dies keeps them, and so does the next durable commit.
    """
    token = _durable_commits.set(False)
    try:
        yield
    finally:
        _durable_commits.reset(token)


def durable_commits() -> bool:
    """Whether the transaction beginning now must reach the disk before its commit returns."""
    return _durable_commits.get()

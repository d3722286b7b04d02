"""Sign-in throttling per account *and* client address, with growing delays.

An anonymous attacker can only slow down their own guesses: the account's owner, signing in from
another address, is never locked out by them. The counter is one atomic upsert, so parallel
failures are all counted. Unknown addresses are throttled exactly like known ones. Across
addresses, leads.auth.ceiling caps what browsers new to an account may try.
"""

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext

from leads.extensions import db
from leads.models.staff import LoginThrottle

STALE_AFTER = timedelta(days=2)
_ACCOUNT_LENGTH = LoginThrottle.account.type.length
_CLIENT_LENGTH = LoginThrottle.client.type.length


def _key(account: str, client: str) -> tuple[str, str]:
    """The pair as stored, cut to its columns. A typed address can outgrow its column once
    lower-cased ("İ" becomes two characters); such an address is no account's, and cut it stays
    throttled."""
    return account[:_ACCOUNT_LENGTH], client[:_CLIENT_LENGTH]


def _where(account: str, client: str):
    account, client = _key(account, client)
    return sa.and_(LoginThrottle.account == account, LoginThrottle.client == client)


def is_blocked(account: str, client: str, now: datetime) -> bool:
    blocked_until = db.session.scalar(sa.select(LoginThrottle.blocked_until).where(_where(account, client)))
    return blocked_until is not None and blocked_until > now


def locked_message() -> str:
    """What a signed-in user is told while their account is blocked from their address (the
    sign-in form, to anyone, says only that the email and password did not work, or that the
    account is locked)."""
    return gettext(
        "Too many wrong passwords: your account is locked for a while from here. "
        "Try again later, or ask an administrator."
    )


def upsert(model):
    """An INSERT into `model`'s table that can say ON CONFLICT DO UPDATE on this database."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model)


def record_failure(
    account: str, client: str, now: datetime, *, max_failures: int, delay: timedelta, max_delay: timedelta
) -> int:
    """Count one failure; every `max_failures`-th blocks the pair, for twice as long as the last time."""
    key_account, key_client = _key(account, client)
    statement = upsert(LoginThrottle).values(
        account=key_account, client=key_client, failures=1, last_failure_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["account", "client"],
        set_={"failures": LoginThrottle.failures + 1, "last_failure_at": now},
    ).returning(LoginThrottle.failures)
    failures = db.session.execute(statement).scalar_one()
    if failures % max_failures == 0:
        rounds = failures // max_failures
        blocked_for = min(delay * 2 ** min(rounds - 1, 20), max_delay)
        db.session.execute(
            sa.update(LoginThrottle).where(_where(account, client)).values(blocked_until=now + blocked_for)
        )
    forget_stale(now)
    return failures


def forget_stale(now: datetime) -> int:
    """Delete the pairs whose last failure is older than STALE_AFTER (run at each failure, and by
    the daily retention run, so typed addresses do not outlive their use when nobody fails); how
    many. Rows another transaction is deleting are left to it (PostgreSQL; SQLite has one writer
    at a time), so two cleanings never wait on each other, or deadlock."""
    stale = (
        sa.select(LoginThrottle.id)
        .where(LoginThrottle.last_failure_at < now - STALE_AFTER)
        .with_for_update(skip_locked=True)
    )
    return db.session.execute(sa.delete(LoginThrottle).where(LoginThrottle.id.in_(stale))).rowcount


def clear(account: str, client: str | None = None) -> None:
    """Forget the failures of `account` from `client` (from everywhere when `client` is None)."""
    condition = LoginThrottle.account == account[:_ACCOUNT_LENGTH]
    if client is not None:
        condition = _where(account, client)
    db.session.execute(sa.delete(LoginThrottle).where(condition))

"""A lockout of one device cookie after too many failed sign-ins made with it (OWASP's device
cookies), so that a cookie copied off the owner's browser brings no more guesses than no cookie.

A device cookie (leads.auth.devices) spares its browser the account's ceiling (leads.auth.ceiling).
Its holder could then guess from many addresses, each with the per-address throttle's allowance.
So the failures made with one cookie are counted, from every address together, in fixed windows
of time (the ceiling's); once a window holds the limit, that cookie is not trusted until the
window ends: the ceiling applies to it like to any new browser. The account and its other
browsers are untouched. A cookie is named by a hash of its nonce: no account, no address.
"""

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from leads.auth.ceiling import window_start
from leads.auth.throttle import upsert
from leads.extensions import db
from leads.models.staff import LoginDeviceLock

log = logging.getLogger(__name__)


def _this_window(device: str, start: datetime):
    return sa.and_(LoginDeviceLock.device == device, LoginDeviceLock.window_start == start)


def is_locked(device: str, now: datetime, *, max_failures: int, window: timedelta) -> bool:
    """Whether the device cookie `device` (devices.device_key) is refused trust now."""
    failures = db.session.scalar(
        sa.select(LoginDeviceLock.failures).where(_this_window(device, window_start(now, window)))
    )
    return failures is not None and failures >= max_failures


def record_failure(device: str, now: datetime, *, max_failures: int, window: timedelta) -> bool:
    """Count one failure made with `device` in the window of `now` (one atomic upsert); True for
    the one call, of however many run at once, whose failure locks it."""
    statement = upsert(LoginDeviceLock).values(
        device=device, window_start=window_start(now, window), failures=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=["device", "window_start"], set_={"failures": LoginDeviceLock.failures + 1}
    ).returning(LoginDeviceLock.failures)
    failures = db.session.execute(statement).scalar_one()
    forget_ended(now, window)
    return failures == max_failures


def forget_ended(now: datetime, window: timedelta) -> int:
    """Delete the counts of windows that have ended (run at each counted failure, and by the
    daily retention run); how many. Rows another transaction is deleting are left to it
    (PostgreSQL; SQLite has one writer at a time), so two cleanings never wait on each other."""
    ended = (
        sa.select(LoginDeviceLock.id)
        .where(LoginDeviceLock.window_start < window_start(now, window))
        .with_for_update(skip_locked=True)
    )
    return db.session.execute(sa.delete(LoginDeviceLock).where(LoginDeviceLock.id.in_(ended))).rowcount


def log_locked(user_id: int, now: datetime, window: timedelta) -> None:
    """Say in the application log, with the account's id alone, that one of its device cookies
    is not trusted for the rest of the window."""
    log.warning(
        "a device cookie of user %s is locked after too many failed sign-ins with it: untrusted until %s",
        user_id,
        (window_start(now, window) + window).isoformat(),
    )

"""A ceiling on failed sign-ins per account from every client address together, which cannot be
turned into a lockout of the owner (OWASP's device cookies).

The per-address throttle (leads.auth.throttle) lets a botnet guess at full speed from each of its
addresses. So failures from browsers without the account's device cookie (leads.auth.devices)
are also counted per account in fixed windows of time; once a window holds the ceiling, such
browsers are refused for that account until it ends, while a browser the owner signed in on
keeps only its per-address throttle. An unknown address is counted and refused like a known one.
The first time a window reaches the ceiling, the admins are told by email (known accounts only).
"""

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from leads.auth import windows
from leads.extensions import db
from leads.i18n import DEFAULT_LANGUAGE, STAFF_LANGUAGES, duration
from leads.messaging.email import queue_email
from leads.messaging.urls import public_url
from leads.models import Role, User
from leads.models.staff import LoginCeiling

log = logging.getLogger(__name__)

_ACCOUNT_LENGTH = LoginCeiling.account.type.length


def _key(account: str) -> str:
    return account[:_ACCOUNT_LENGTH]


def is_reached(account: str, now: datetime, *, max_failures: int, window: timedelta) -> bool:
    """Whether browsers new to `account` are refused now."""
    return windows.failures(LoginCeiling.account, _key(account), now, window) >= max_failures


def record_failure(account: str, now: datetime, *, max_failures: int, window: timedelta) -> bool:
    """Count one failure in the window of `now`; True for the one call, of however many run at
    once, that finds the window's ceiling reached first."""
    if windows.count_failure(LoginCeiling.account, _key(account), now, window) < max_failures:
        return False
    claimed = db.session.execute(
        sa.update(LoginCeiling)
        .where(windows.this_window(LoginCeiling.account, _key(account), now, window))
        .where(LoginCeiling.notified_at.is_(None))
        .values(notified_at=now)
    )
    return claimed.rowcount == 1


def forget_ended(now: datetime, window: timedelta) -> int:
    """Delete the counts of windows that have ended (the daily retention run); how many."""
    return windows.forget_ended(LoginCeiling, now, window)


def clear(account: str) -> None:
    """Forget the failures counted against `account` (a reset or reactivation lifts every lockout)."""
    db.session.execute(sa.delete(LoginCeiling).where(LoginCeiling.account == account[:_ACCOUNT_LENGTH]))


def tell_admins(user: User, now: datetime, *, max_failures: int, window: timedelta) -> None:
    """Email every active admin, in their own language, that browsers new to `user`'s account are
    refused for the rest of the window; logged with ids only (no address, no password)."""
    start = windows.window_start(now, window)
    log.warning(
        "sign-in ceiling reached for user %s: browsers it has not signed in on are refused until %s",
        user.id,
        (start + window).isoformat(),
    )
    admins = db.session.scalars(sa.select(User).filter_by(role=Role.ADMIN, active=True).order_by(User.id))
    for admin in admins:
        language = admin.language if admin.language in STAFF_LANGUAGES else DEFAULT_LANGUAGE
        queue_email(
            template="staff_sign_in_ceiling",
            to=admin.email,
            language=language,
            idempotency_key=f"sign-in-ceiling:{user.id}:{start:%Y%m%dT%H%M}:{admin.id}",
            # Made by the worker: the request that reached the ceiling answers as fast as any other.
            render_later=True,
            account=user.email,
            count=max_failures,
            period=duration(window.total_seconds(), language),
            users_url=public_url("staff.users"),
        )

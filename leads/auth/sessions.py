"""Staff sessions that end: a per-user version in the cookie, an idle timeout and an absolute lifetime.

Flask-Login's "strong" protection is off on purpose: it hashes a client-supplied X-Forwarded-For,
so an attacker who copies a cookie also copies the check. What ends a session here is server-side.
"""

import hashlib
import time

import sqlalchemy as sa
from flask import current_app, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import login_user, logout_user

from leads.extensions import db
from leads.models import User


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie session, signed with SHA-256 instead of SHA-1."""

    digest_method = staticmethod(hashlib.sha256)


SIGNED_IN_AT = "signed_in_at"
SEEN_AT = "seen_at"


def load_user(user_id: str) -> User | None:
    """The user a session cookie names, if the cookie is still current; None ends the session."""
    raw_id, _, raw_version = user_id.partition(":")
    if not raw_id.isdigit() or not raw_version.isdigit():
        return _expire()
    user = db.session.scalar(sa.select(User).filter_by(id=int(raw_id), active=True))
    if user is None or user.session_version != int(raw_version) or not _within_time_limits():
        return _expire()
    session[SEEN_AT] = int(time.time())
    return user


def _within_time_limits() -> bool:
    now = time.time()
    config = current_app.config
    signed_in_at, seen_at = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    if not isinstance(signed_in_at, int) or not isinstance(seen_at, int):
        return False
    return (
        now - seen_at <= config["SESSION_IDLE_MINUTES"] * 60
        and now - signed_in_at <= config["SESSION_MAX_HOURS"] * 3600
    )


def _expire() -> None:
    session.clear()
    return None


def start_session(user: User) -> None:
    """Sign in on a fresh session: nothing an attacker planted in the old cookie survives."""
    session.clear()
    login_user(user)
    now = int(time.time())
    session[SIGNED_IN_AT] = now
    session[SEEN_AT] = now


def renew_session(user: User) -> None:
    """Keep this session after the user's version changed (their own password change)."""
    signed_in_at = session.get(SIGNED_IN_AT)
    start_session(user)
    if isinstance(signed_in_at, int):
        session[SIGNED_IN_AT] = signed_in_at  # the absolute lifetime still counts from sign-in


def end_session(user: User | None) -> None:
    """Sign out here and everywhere: the version in every copy of the cookie is now stale."""
    if user is not None and user.is_authenticated:
        user.end_sessions()
        db.session.commit()
    logout_user()
    session.clear()

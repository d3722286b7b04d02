"""Staff accounts: argon2id password hashes and account creation."""

from datetime import timedelta
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_app_context

from leads.extensions import db
from leads.models import Role, User
from leads.timeutil import utcnow

MIN_PASSWORD_LENGTH = 12
# Config keys that may override argon2-cffi's parameters; only the testing config sets them.
_COST_SETTINGS = {
    "time_cost": "ARGON2_TIME_COST",
    "memory_cost": "ARGON2_MEMORY_COST",
    "parallelism": "ARGON2_PARALLELISM",
}


class AccountError(ValueError):
    """Bad input for a staff account, with a message fit to show."""


def load_active_user(user_id: str) -> User | None:
    """Flask-Login's user loader: a deactivated user is signed out at their next request."""
    return db.session.scalar(sa.select(User).filter_by(id=int(user_id), active=True))


def password_hasher() -> PasswordHasher:
    """argon2id with the library's recommended parameters, unless the app's config names others."""
    config = current_app.config if has_app_context() else {}
    return _hasher_with(**{name: config.get(key) for name, key in _COST_SETTINGS.items()})


@cache
def _hasher_with(**costs: int | None) -> PasswordHasher:
    return PasswordHasher(**{name: value for name, value in costs.items() if value is not None})


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    # The parameters come from the hash itself, so hashes made with other costs still verify.
    try:
        return password_hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(email: str, password: str, role: str) -> User:
    """Add a staff user to the session; AccountError on bad input or an existing address."""
    try:
        address = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(f"Not a valid email address: {exc}") from None
    if role not in {r.value for r in Role}:
        raise AccountError(f"Role must be one of: {', '.join(r.value for r in Role)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    if db.session.scalar(sa.select(User.id).filter_by(email=address)) is not None:
        raise AccountError(f"A user with the address {address} already exists")
    user = User(email=address, password_hash=hash_password(password), role=role)
    db.session.add(user)
    return user


def authenticate(email: str, password: str, *, max_failures: int, lockout: timedelta) -> User | None:
    """The active, unlocked user with these credentials, or None (never saying which check failed).

    Each wrong password counts; `max_failures` in a row lock the account for `lockout`.
    """
    user = db.session.scalar(sa.select(User).filter_by(email=email.strip().lower()))
    if user is None:
        # Verify against a hash of the same cost, so a miss takes as long as a hit.
        verify_password(_dummy_hash(password_hasher()), password)
        return None
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        return None
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
        return None
    if not user.active:
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if password_hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user

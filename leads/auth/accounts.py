"""Staff accounts: argon2id password hashes and account creation."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_app_context
from flask_babel import gettext
from zxcvbn import zxcvbn

from leads.auth import ceiling, device_lock, devices, throttle
from leads.extensions import db, flush_unless_taken
from leads.models import Role, User
from leads.timeutil import utcnow

MIN_PASSWORD_LENGTH = 12
# Config keys that may override argon2-cffi's parameters; only the testing config sets them.
_COST_SETTINGS = {
    "time_cost": "ARGON2_TIME_COST",
    "memory_cost": "ARGON2_MEMORY_COST",
    "parallelism": "ARGON2_PARALLELISM",
}
MIN_PASSWORD_SCORE = 3  # zxcvbn: 3 is "safely unguessable" against an online attack that is throttled


def check_password(password: str, email: str = "") -> None:
    """AccountError unless `password` is long enough and not a common or guessable one.

    zxcvbn ships its dictionaries (common passwords, names, words, keyboard patterns): no network.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            gettext("The password must have at least %(count)d characters", count=MIN_PASSWORD_LENGTH)
        )
    hints = [email, email.partition("@")[0], "quotes", "danish", "treatment"] if email else []
    if zxcvbn(password[:100], user_inputs=hints)["score"] < MIN_PASSWORD_SCORE:
        raise AccountError(
            gettext("That password is too common or too easy to guess; try a few unrelated words together")
        )


class AccountError(ValueError):
    """Bad input for a staff account, with a message fit to show."""


class AddressError(AccountError):
    """The email address of a new account is not valid or already taken."""


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


def _address_taken(address: str) -> AddressError | None:
    if db.session.scalar(sa.select(User.id).filter_by(email=address)) is not None:
        return AddressError(gettext("A user with the address %(address)s already exists", address=address))
    return None


def create_user(email: str, password: str, role: str, *, temporary: bool = False) -> User:
    """Add a staff user to the session, flushed; AccountError on bad input or an existing address,
    also one another admin added since the check (the unique key tells). A `temporary` password
    (an admin's or the operator's, handed over) must be changed at the first sign-in."""
    try:
        address = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AddressError(gettext("Not a valid email address: %(problem)s", problem=exc)) from None
    if role not in {r.value for r in Role}:
        raise AccountError(gettext("Role must be one of: %(roles)s", roles=", ".join(r.value for r in Role)))
    check_password(password, address)
    if (taken := _address_taken(address)) is not None:
        raise taken
    user = User(
        email=address, password_hash=hash_password(password), role=role, must_change_password=temporary
    )
    db.session.add(user)
    flush_unless_taken(lambda: _address_taken(address))
    return user


def throttle_settings() -> dict:
    """The settings of the sign-in throttle, ceiling and device lock from the app's config, as
    `authenticate` and `check_current_password` take them."""
    config = current_app.config
    return {
        "max_failures": config["LOGIN_MAX_FAILURES"],
        "lockout": timedelta(minutes=config["LOGIN_LOCKOUT_MINUTES"]),
        "max_lockout": timedelta(hours=config["LOGIN_LOCKOUT_MAX_HOURS"]),
        "account_max_failures": config["LOGIN_ACCOUNT_MAX_FAILURES"],
        "account_window": timedelta(minutes=config["LOGIN_ACCOUNT_WINDOW_MINUTES"]),
        "device_max_failures": config["LOGIN_DEVICE_MAX_FAILURES"],
        "device_window": timedelta(minutes=config["LOGIN_DEVICE_WINDOW_MINUTES"]),
    }


def _device_limits(settings: dict) -> dict:
    return {"max_failures": settings["device_max_failures"], "window": settings["device_window"]}


def _trusts(device: str | None, now: datetime, settings: dict) -> bool:
    """Whether a browser showing the device cookie `device` (devices.device_key; None without a
    genuine one) is spared the account's ceiling: not while that cookie is locked."""
    return device is not None and not device_lock.is_locked(device, now, **_device_limits(settings))


def _refused(account: str, client: str, trusted: bool, now: datetime, settings: dict) -> bool:
    """Whether the throttle blocks `account` from `client`, or, for a browser not `trusted` (no
    device cookie of the account, or a locked one), the account's ceiling is reached."""
    if throttle.is_blocked(account, client, now):
        return True
    return not trusted and ceiling.is_reached(
        account, now, max_failures=settings["account_max_failures"], window=settings["account_window"]
    )


def _count_failure(
    account: str,
    user: User | None,
    client: str,
    device: str | None,
    trusted: bool,
    now: datetime,
    settings: dict,
) -> None:
    """One failure against `account` from `client`; made with a device cookie of the account,
    against that cookie too (logged when it locks it); from a browser the cookie does not spare
    (none, or a locked one), against the account's ceiling too (the admins told when it is first
    reached)."""
    throttle.record_failure(
        account,
        client,
        now,
        max_failures=settings["max_failures"],
        delay=settings["lockout"],
        max_delay=settings["max_lockout"],
    )
    if device is not None and device_lock.record_failure(device, now, **_device_limits(settings)):
        device_lock.log_locked(user.id, now, settings["device_window"])
    if trusted:
        return
    limits = {"max_failures": settings["account_max_failures"], "window": settings["account_window"]}
    if ceiling.record_failure(account, now, **limits) and user is not None:
        ceiling.tell_admins(user, now, **limits)


class WrongCurrentPassword(AccountError):
    """The current password given to change it was not right."""


class Locked(AccountError):
    """Too many wrong passwords for this account from this client: the throttle blocks it."""


def check_current_password(
    user: User, password: str, *, client: str, cookies: Mapping[str, str] | None = None, **settings
) -> None:
    """Locked while the sign-in throttle (or, for a browser without the user's device cookie among
    `cookies`, the ceiling) refuses the user from `client`; otherwise WrongCurrentPassword unless
    `password` is the user's, the failure counted as a failed sign-in (so a copied session cannot
    guess faster than the sign-in form). `settings`: throttle_settings(). The caller commits, also
    after a failure."""
    now = utcnow()
    device = devices.device_key(cookies, user)
    trusted = _trusts(device, now, settings)
    if _refused(user.email, client, trusted, now, settings):
        raise Locked(throttle.locked_message())
    if not verify_password(user.password_hash, password):
        _count_failure(user.email, user, client, device, trusted, now, settings)
        raise WrongCurrentPassword(gettext("Your current password is not right."))


def authenticate(
    email: str, password: str, *, client: str, cookies: Mapping[str, str] | None = None, **settings
) -> User | None:
    """The active user with these credentials, or None, never saying which check failed.

    Every call does the same work (one argon2 verify) and gives the same answer whatever the account's
    state. Failures are throttled per typed address and `client` (leads.auth.throttle); made
    with the account's device cookie among `cookies` (the request's), per cookie from every client
    (leads.auth.device_lock); unless that cookie spares the browser (held and not locked), per
    typed address from every client (leads.auth.ceiling). `settings`: throttle_settings().
    """
    account = email.strip().lower()
    now = utcnow()
    user = db.session.scalar(sa.select(User).filter_by(email=account))
    device = devices.device_key(cookies, user)
    trusted = _trusts(device, now, settings)
    blocked = _refused(account, client, trusted, now, settings)
    # Verified against a dummy hash of the same cost whenever the real one must not be, so every
    # attempt costs one argon2 verify.
    real = user.password_hash if user and not blocked else _dummy_hash(password_hasher())
    password_ok = verify_password(real, password)
    if blocked:
        return None
    if user is None or not password_ok:
        _count_failure(account, user, client, device, trusted, now, settings)
        return None
    if not user.active:
        return None
    throttle.clear(account, client)
    user.last_login_at = now
    if password_hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user

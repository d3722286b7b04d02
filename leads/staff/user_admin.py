"""Managing staff accounts: deactivate, reactivate, reset a password, change one's own.

Creation is leads.auth.accounts.create_user. Every function raises AccountError with a message fit
to show and leaves committing to the caller.
"""

import sqlalchemy as sa
from flask_babel import gettext

from leads.auth import ceiling, throttle
from leads.auth.accounts import (
    AccountError,
    check_current_password,
    check_password,
    hash_password,
)
from leads.extensions import db
from leads.models import Role, User


class OwnAccount(AccountError):
    """An admin's action that a staff member may not take on their own account."""


def find_user(email_or_id: str | int) -> User:
    if isinstance(email_or_id, int):
        user = db.session.get(User, email_or_id)
    else:
        user = db.session.scalar(sa.select(User).filter_by(email=email_or_id.strip().lower()))
    if user is None:
        raise AccountError(f"No staff account {email_or_id!r}")
    return user


def list_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.active.desc(), User.email)))


def _active_admins() -> int:
    """How many admins are active, their rows locked until the caller's transaction ends: two admins
    deactivating each other at once cannot both see the other as the one left (PostgreSQL; SQLite
    runs one writer at a time)."""
    return len(
        db.session.scalars(
            sa.select(User.id).filter_by(role=Role.ADMIN, active=True).order_by(User.id).with_for_update()
        ).all()
    )


def set_active(user: User, active: bool, *, acting_user_id: int | None = None) -> User:
    """Deactivate (signs the user out at their next request) or reactivate an account."""
    if not active:
        if acting_user_id is not None and user.id == acting_user_id:
            raise AccountError(gettext("You cannot deactivate your own account."))
        if user.role == Role.ADMIN and user.active and _active_admins() <= 1:
            raise AccountError(gettext("This is the last active admin; make another admin first."))
    user.active = active
    user.end_sessions()  # a reactivated account must not bring old cookies back
    if active:
        throttle.clear(user.email)
        ceiling.clear(user.email)
    return user


def reset_password(user: User, new_password: str, *, acting_user_id: int | None = None) -> User:
    """Set a new password (an admin's or the operator's reset), lift any lockout and end every
    session of the user, who must change it at their next sign-in (it was handed over). An admin's
    own password is changed with the current one instead (change_own_password): a reset asks for
    nothing, and would sign the admin out."""
    if acting_user_id is not None and user.id == acting_user_id:
        raise OwnAccount(
            gettext("Change your own password under “Change my password”: it asks for your current one.")
        )
    _set_password(user, new_password)
    user.must_change_password = True
    return user


def _set_password(user: User, new_password: str) -> User:
    """The new password, no lockout, and every session of the user ended (the caller may renew one)."""
    check_password(new_password, user.email)
    user.password_hash = hash_password(new_password)
    # Every lockout lifted: the new password also ends the trust of the user's browsers
    # (leads.auth.devices), which the ceiling would otherwise refuse for the rest of its window.
    throttle.clear(user.email)
    ceiling.clear(user.email)
    user.end_sessions()
    return user


def change_own_settings(user: User, *, time_zone: str, language: str) -> User:
    """A staff member's own display settings; the caller commits."""
    user.time_zone = time_zone
    user.language = language
    return user


def change_own_password(
    user: User, current_password: str, new_password: str, *, client: str, **throttle_settings
) -> User:
    """The user's own new password, given the current one. A wrong current password counts as a
    failed sign-in of the account from `client` (accounts.WrongCurrentPassword, to be committed), and while
    the throttle or the ceiling refuses them nothing is checked (accounts.Locked; `throttle_settings`
    as check_current_password takes them, the request's cookies too). A password the user chose themselves is
    no longer a temporary one; the same one again is refused."""
    check_current_password(user, current_password, client=client, **throttle_settings)
    if new_password == current_password:
        raise AccountError(gettext("Choose a new password that differs from the current one."))
    _set_password(user, new_password)
    user.must_change_password = False
    return user

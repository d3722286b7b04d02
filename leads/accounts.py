"""Staff accounts: argon2id password hashes and account creation."""

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email

from leads.extensions import db
from leads.models import Role, User

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD_LENGTH = 12


class AccountError(ValueError):
    """Bad input for a staff account, with a message fit to show."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
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

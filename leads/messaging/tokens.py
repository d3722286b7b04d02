"""Signed, expiring tokens for links in emails, each scoped to one purpose and one record, and
the staff device cookie's."""

import hashlib
from functools import lru_cache

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

# One salt per purpose: a token made for one kind of link never opens another kind.
ASSIGNMENT_SALT = "provider-assignment-link"


class TokenError(ValueError):
    """A link token that cannot be used."""


class ExpiredToken(TokenError):
    """The token was genuine but is older than allowed."""


class InvalidToken(TokenError):
    """The token was tampered with, truncated, or made for another purpose."""


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"], salt)


@lru_cache(maxsize=16)
def _serializer_for(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    # Built once per key and purpose: it keeps no state between calls (each makes its own signer).
    return URLSafeTimedSerializer(secret_key, salt=salt, signer_kwargs={"digest_method": hashlib.sha256})


def make_token(salt: str, record_id: int) -> str:
    """A URL-safe token naming `record_id`, signed for the purpose `salt`."""
    return _serializer(salt).dumps(int(record_id))


def read_token(salt: str, token: str, max_age_seconds: int) -> int:
    """The record id in `token`; ExpiredToken or InvalidToken when it cannot be trusted."""
    try:
        value = _serializer(salt).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise ExpiredToken("This link has expired.") from exc
    except BadSignature as exc:
        raise InvalidToken("This link is not valid.") from exc
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidToken("This link is not valid.")
    return value


def make_assignment_token(assignment_id: int) -> str:
    """The token of a provider's link to one assignment."""
    return make_token(ASSIGNMENT_SALT, assignment_id)


def read_assignment_token(token: str, max_age_seconds: int) -> int:
    """The assignment id in a provider's link token; ExpiredToken or InvalidToken otherwise."""
    return read_token(ASSIGNMENT_SALT, token, max_age_seconds)


PATIENT_SALT = "patient-self-service-link"


def make_patient_token(lead_id: int) -> str:
    """The token of the patient's self-service link to their own request."""
    return make_token(PATIENT_SALT, lead_id)


def read_patient_token(token: str, max_age_seconds: int) -> int:
    """The lead id in a patient's self-service token; ExpiredToken or InvalidToken otherwise."""
    return read_token(PATIENT_SALT, token, max_age_seconds)


DEVICE_SALT = "staff-device-cookie"


def make_device_token(user_id: int, password_tag: str, nonce: str) -> str:
    """The value of a staff device cookie: the account's id, a tag of its password hash and the
    browser's own random nonce (what its failures are counted against)."""
    return _serializer(DEVICE_SALT).dumps([int(user_id), password_tag, nonce])


def read_device_token(token: str, max_age_seconds: int) -> tuple[int, str, str]:
    """The account id, password tag and nonce in a device cookie; ExpiredToken or InvalidToken
    otherwise (also for a cookie made before cookies had a nonce)."""
    try:
        value = _serializer(DEVICE_SALT).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise ExpiredToken("This device cookie has expired.") from exc
    except BadSignature as exc:
        raise InvalidToken("This device cookie is not valid.") from exc
    match value:
        case [int() as user_id, str() as tag, str() as nonce] if not isinstance(user_id, bool) and nonce:
            return user_id, tag, nonce
    raise InvalidToken("This device cookie is not valid.")

"""The quote form's signed token: when the form was shown (the time trap), which consent
wording it showed and in which language, and a one-time key so that a repeated Send stores one lead."""

import secrets
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "quote-form-token"


@dataclass(frozen=True)
class FormToken:
    key: str  # becomes Lead.submission_key
    issued_at: float  # seconds since the epoch
    consent_version: str
    consent_language: str = "en"


class TokenProblem(StrEnum):
    MISSING = "missing"  # absent or tampered with
    EXPIRED = "expired"
    TOO_FAST = "too_fast"


# What the patient reads for each problem; their answers are always kept on the page.
PROBLEM_MESSAGES = {
    TokenProblem.MISSING: _l(
        "We could not check this form. Your answers are still here: please check them and press "
        "Send my request again."
    ),
    TokenProblem.EXPIRED: _l(
        "This page was opened a long time ago, so we could not accept it. Your answers are still "
        "here: please check them and press Send my request again."
    ),
    TokenProblem.TOO_FAST: _l(
        "The form was sent within a few seconds of opening it, which we do not accept, to keep out "
        "automated spam. Your answers are still here: please check them and press Send my request again."
    ),
}


@lru_cache(maxsize=8)
def _serializer(secret_key: str) -> URLSafeSerializer:
    # Built once per key: it keeps no state between calls (each call makes its own signer).
    return URLSafeSerializer(secret_key, salt=_SALT)


def issue(secret_key: str, *, consent_version: str, now: float, consent_language: str = "en") -> str:
    """A new signed token for a form shown at `now`."""
    payload = {
        "k": secrets.token_urlsafe(24),
        "t": round(now, 3),
        "cv": consent_version,
        "cl": consent_language,
    }
    return _serializer(secret_key).dumps(payload)


def read(secret_key: str, token: str | None) -> FormToken | None:
    """The token's contents, or None when it is missing, malformed or not signed by us."""
    if not token or len(token) > 300:
        return None
    try:
        payload = _serializer(secret_key).loads(token)
        return FormToken(
            key=str(payload["k"]),
            issued_at=float(payload["t"]),
            consent_version=str(payload["cv"]),
            consent_language=str(payload.get("cl", "en")),
        )
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def problem(
    token: FormToken | None, *, now: float, min_seconds: float, max_age: float
) -> TokenProblem | None:
    """Why the form must be refused, or None if its timing is human."""
    if token is None:
        return TokenProblem.MISSING
    age = now - token.issued_at
    if age > max_age:
        return TokenProblem.EXPIRED
    if age < min_seconds:
        return TokenProblem.TOO_FAST
    return None

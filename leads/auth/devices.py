"""Device cookies (OWASP's answer to guessing one account's password from many addresses): a
browser where an account signed in keeps a signed cookie naming the account, and the sign-in
ceiling (leads.auth.ceiling) trusts it for that account alone, until too many failures made with
that one cookie lock it (leads.auth.device_lock).

The cookie holds the account's id, a tag of its password hash and a random nonce of its own (new
at every sign-in: what the cookie's failures are counted against), signed with SECRET_KEY; no
address, no name. One cookie per account, so colleagues sharing a browser each keep theirs. A
new password (a reset, the owner's own change) ends the trust of every browser but the one the
owner changed it in. A cookie made before cookies had a nonce is not trusted: it could not be
locked."""

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from flask import current_app, request

from leads.messaging import tokens
from leads.models import User

COOKIE_PREFIX = "staff_device_"
# Sent with the staff pages alone: the sign-in and change-password forms read it.
PATH = "/staff"


def cookie_name(user_id: int) -> str:
    return f"{COOKIE_PREFIX}{user_id}"


def password_tag(user: User) -> str:
    """What ties a device cookie to the account's password: a new password makes it another."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _max_age() -> int:
    return current_app.config["LOGIN_DEVICE_DAYS"] * 86400


def device_key(cookies: Mapping[str, str] | None, user: User | None) -> str | None:
    """What failures with the device cookie of `user` among `cookies` (the request's) are counted
    against: a hash of its nonce, when the cookie is genuine, not expired and made while the
    account had the password it has now; None otherwise, and always for an unknown account."""
    if user is None or not cookies:
        return None
    token = cookies.get(cookie_name(user.id))
    if not token:
        return None
    try:
        user_id, tag, nonce = tokens.read_device_token(token, _max_age())
    except tokens.TokenError:
        return None
    if user_id != user.id or not hmac.compare_digest(tag, password_tag(user)):
        return None
    return hashlib.sha256(nonce.encode()).hexdigest()


def remember(response, user: User) -> None:
    """Give the browser `response` goes to a fresh device cookie of `user`, with a new nonce (after
    a sign-in, or the owner's own password change)."""
    response.set_cookie(
        cookie_name(user.id),
        tokens.make_device_token(user.id, password_tag(user), secrets.token_urlsafe(16)),
        max_age=_max_age(),
        path=f"{request.script_root}{PATH}",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )

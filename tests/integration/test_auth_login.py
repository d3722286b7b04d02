"""Staff sign-in: generic errors, lockout and its expiry, deactivated accounts, argon2id hashes,
the rate limit, sign-out, and where a signed-in coordinator lands."""

from datetime import timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa
import time_machine
from argon2 import PasswordHasher, extract_parameters

from leads.extensions import db
from leads.models import Role, User
from leads.models.staff import LoginThrottle
from leads.timeutil import utcnow
from tests.staff_support import PASSWORD, fresh_client, make_staff, sign_in


@pytest.fixture
def client(app):
    """A client whose requests each start with an empty `g`, as in production."""
    return fresh_client(app)


GENERIC = "That email and password did not work, or the account is locked for a while."


def _is_signed_in(client) -> bool:
    response = client.get("/staff/leads")
    return response.status_code == 200


def test_passwords_are_stored_as_argon2id_hashes(app):
    user = make_staff()
    stored = db.session.scalar(sa.select(User.password_hash).filter_by(id=user.id))
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_password_hashed_at_production_cost_signs_in_and_is_rehashed_at_the_configured_cost(app, client):
    user = make_staff(password_hash=PasswordHasher().hash(PASSWORD))
    assert sign_in(client, user).status_code == 302
    stored = db.session.scalar(sa.select(User.password_hash).filter_by(id=user.id))
    assert extract_parameters(stored).time_cost == app.config["ARGON2_TIME_COST"]


def test_the_right_password_signs_in_and_lands_on_the_queue(app, client):
    user = make_staff()
    response = sign_in(client, user)
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    assert client.get("/staff/").headers["Location"] == "/staff/leads"
    assert _is_signed_in(client)
    db.session.refresh(user)
    assert user.last_login_at is not None


@pytest.mark.parametrize("path", ["/staff/", "/staff/leads?status=new"])
def test_a_page_asked_for_while_signed_out_opens_the_sign_in_page_with_a_notice_not_an_error(app, path):
    """Following a link or a bookmark is no mistake: the sign-in page says why it is shown, plainly,
    with no "There is a problem" box, no "Done" and nothing focused."""
    response = fresh_client(app).get(path, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == "/staff/login" and response.status_code == 200
    assert '<p class="notice">Sign in to see that page.</p>' in page
    for sign in ("There is a problem", 'role="alert"', "Done", "autofocus"):
        assert sign not in page, sign


def test_a_wrong_password_and_an_unknown_address_get_the_same_generic_error(app, client):
    user = make_staff()
    wrong = sign_in(client, user, password="not the password")
    unknown = client.post("/staff/login", data={"email": "nobody@example.dk", "password": PASSWORD})
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert GENERIC in response.get_data(as_text=True)
    assert not _is_signed_in(client)


def _fail_from_one_address(client, user, times: int) -> None:
    """`times` wrong passwords from one client address (sign_in picks a new one each call)."""
    sign_in(client, user, password="guess again please")
    for _ in range(times - 1):
        client.post("/staff/login", data={"email": user.email, "password": "guess again please"})


def _throttle(user):
    return db.session.scalar(sa.select(LoginThrottle).filter_by(account=user.email))


def test_repeated_failures_lock_the_account_even_against_the_right_password(app, client):
    user = make_staff()
    _fail_from_one_address(client, user, app.config["LOGIN_MAX_FAILURES"])
    throttled = _throttle(user)
    assert throttled.blocked_until is not None and throttled.blocked_until > utcnow()
    response = client.post("/staff/login", data={"email": user.email, "password": PASSWORD})
    assert GENERIC in response.get_data(as_text=True)  # no hint that the account is locked
    assert not _is_signed_in(client)


def test_the_lockout_expires_after_the_configured_minutes(app, client):
    user = make_staff()
    _fail_from_one_address(client, user, app.config["LOGIN_MAX_FAILURES"])
    minutes = app.config["LOGIN_LOCKOUT_MINUTES"]
    right = {"email": user.email, "password": PASSWORD}
    with time_machine.travel(utcnow() + timedelta(minutes=minutes - 1), tick=False):
        assert GENERIC in client.post("/staff/login", data=right).get_data(as_text=True)
    with time_machine.travel(utcnow() + timedelta(minutes=minutes + 1), tick=False):
        assert client.post("/staff/login", data=right).status_code == 302
    db.session.expire_all()
    assert _throttle(user) is None


def test_fewer_failures_than_the_limit_do_not_lock_and_a_success_resets_the_count(app, client):
    user = make_staff()
    _fail_from_one_address(client, user, app.config["LOGIN_MAX_FAILURES"] - 1)
    assert client.post("/staff/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    db.session.expire_all()
    assert _throttle(user) is None


def test_a_deactivated_user_cannot_sign_in(app, client):
    user = make_staff(active=False)
    response = sign_in(client, user)
    assert GENERIC in response.get_data(as_text=True)
    assert not _is_signed_in(client)


def test_deactivating_a_signed_in_user_ends_their_session_at_the_next_request(app, client):
    user = make_staff()
    sign_in(client, user)
    assert _is_signed_in(client)
    user.active = False
    db.session.commit()
    response = client.get("/staff/leads")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def test_too_many_attempts_from_one_address_get_a_readable_429(app, client):
    user = make_staff()
    sign_in(client, user, password="first attempt")  # picks a fresh client address
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    responses = [
        client.post("/staff/login", data={"email": user.email, "password": "wrong"}) for _ in range(limit)
    ]
    assert responses[-1].status_code == 429
    assert "Too many attempts" in responses[-1].get_data(as_text=True)


def test_signing_out_ends_the_session(app, client):
    user = make_staff(Role.ADMIN)
    sign_in(client, user)
    response = client.post("/staff/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/login"
    assert not _is_signed_in(client)


@pytest.mark.pg  # PostgreSQL refuses an account key longer than its column
def test_an_address_that_grows_when_lower_cased_is_throttled_like_any_other(app, client):
    """'İ' lower-cased is two characters ('i' and a combining dot): 254 typed make 508."""
    typed = "\u0130" * 254
    client.environ_base["REMOTE_ADDR"] = "198.51.100.40"
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        response = client.post("/staff/login", data={"email": typed, "password": "guess"})
        assert response.status_code == 200
        assert GENERIC in response.get_data(as_text=True)
    [throttled] = db.session.scalars(sa.select(LoginThrottle).filter_by(client="198.51.100.40")).all()
    assert len(throttled.account) <= 254
    assert throttled.failures == app.config["LOGIN_MAX_FAILURES"] and throttled.blocked_until is not None


@pytest.mark.parametrize(
    "target",
    ["/staff/leads\r\nSet-Cookie: planted=1", "/staff/leads\n", "/staff/\x00leads", "/staff/\tleads"],
)
def test_a_next_address_with_control_characters_is_not_followed(app, client, target):
    """A line break would split the Location header (werkzeug refuses it: an error after a
    successful sign-in); no path of this site has a control character."""
    user = make_staff()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.41"
    response = client.post(
        f"/staff/login?next={quote(target, safe='')}", data={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    assert "planted" not in str(response.headers)
    signed_in = client.get(f"/staff/login?next={quote(target, safe='')}")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/staff/"

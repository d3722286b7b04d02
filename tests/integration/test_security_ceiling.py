"""The per-account sign-in ceiling: guesses from many addresses (a botnet) are capped per account,
without handing the attacker a lockout of the owner, whose browsers carry a device cookie."""

import itertools
import logging
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from itsdangerous import URLSafeTimedSerializer, base64_decode

from leads.auth import ceiling, devices, windows
from leads.extensions import db
from leads.messaging import tokens
from leads.messaging.email import render_pending
from leads.models import EmailMessage, Role
from leads.models.staff import LoginCeiling, LoginThrottle
from leads.patients import privacy
from leads.staff import user_admin
from tests.staff_support import PASSWORD, at_once, fresh_client, make_staff

# Runs again on PostgreSQL: the counter is an upsert written per database.
pytestmark = pytest.mark.pg

GENERIC = "That email and password did not work, or the account is locked for a while."
# A quarter past an hour: every test's attempts fall in one window of the default hour.
MOMENT = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
UNKNOWN = "nobody-here@example.dk"


@pytest.fixture
def clock():
    with time_machine.travel(MOMENT, tick=False) as traveller:
        yield traveller


def _post(client, address, email, password):
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/staff/login", data={"email": email, "password": password})


# Rate limits live in Redis for the whole run, and every test here runs at the same moment: each
# attempt comes from a network no other attempt used.
_networks = itertools.count(1)


def _address() -> str:
    return f"2001:db8:{next(_networks):x}::1"


def _attack(app, email: str, count: int) -> None:
    """`count` wrong passwords for `email`, each from a /64 network of its own (a client of its own
    to the per-address throttle), none with a device cookie."""
    attacker = fresh_client(app)
    for _ in range(count):
        page = _post(attacker, _address(), email, "guess number 7").get_data(as_text=True)
        assert GENERIC in page


def _ceiling(app) -> int:
    return app.config["LOGIN_ACCOUNT_MAX_FAILURES"]


def _device_cookie(client, user):
    return client.get_cookie(f"staff_device_{user.id}", path="/staff")


def _owner_browser(app, user):
    """A browser where `user` signed in (it keeps their device cookie), signed out again."""
    browser = fresh_client(app)
    assert _post(browser, _address(), user.email, PASSWORD).status_code == 302
    assert browser.post("/staff/logout").status_code == 302
    assert _device_cookie(browser, user) is not None
    return browser


def _error_block(page: str) -> str:
    return page[page.index(GENERIC) - 200 : page.index(GENERIC) + 200]


def test_the_ceiling_reached_from_many_addresses_refuses_a_new_one_for_known_and_unknown_alike(app, clock):
    user = make_staff()
    _attack(app, user.email, _ceiling(app))
    _attack(app, UNKNOWN, _ceiling(app))
    known = _post(fresh_client(app), _address(), user.email, PASSWORD)
    unknown = _post(fresh_client(app), _address(), UNKNOWN, PASSWORD)
    assert known.status_code == unknown.status_code == 200  # not signed in, with the right password
    pages = [
        r.get_data(as_text=True).replace(email, "EMAIL")
        for r, email in ((known, user.email), (unknown, UNKNOWN))
    ]
    assert GENERIC in pages[0] and _error_block(pages[0]) == _error_block(pages[1])


def test_one_failure_below_the_ceiling_a_new_address_still_signs_in(app, clock):
    user = make_staff()
    _attack(app, user.email, _ceiling(app) - 1)
    assert _post(fresh_client(app), _address(), user.email, PASSWORD).status_code == 302


def test_the_owner_with_a_device_cookie_still_signs_in_from_a_new_address(app, clock):
    user = make_staff()
    browser = _owner_browser(app, user)
    _attack(app, user.email, _ceiling(app))
    assert _post(fresh_client(app), _address(), user.email, PASSWORD).status_code == 200
    assert _post(browser, _address(), user.email, PASSWORD).status_code == 302


def test_a_failure_from_the_owners_browser_counts_against_its_address_not_the_account(app, clock):
    user = make_staff()
    browser = _owner_browser(app, user)
    address = _address()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _post(browser, address, user.email, "a typo")
    assert db.session.scalar(sa.select(LoginCeiling.failures).filter_by(account=user.email)) is None
    blocked = db.session.scalar(sa.select(LoginThrottle).filter_by(account=user.email))
    assert blocked.blocked_until is not None  # the per-address throttle holds that browser back
    assert GENERIC in _post(browser, address, user.email, PASSWORD).get_data(as_text=True)


def test_the_device_cookie_is_signed_long_lived_http_only_lax_and_names_no_email(app, clock):
    user = make_staff()
    app.config["SESSION_COOKIE_SECURE"] = True  # as production's
    response = _post(fresh_client(app), _address(), user.email, PASSWORD)
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"staff_device_{user.id}=")]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "max-age", "path"} <= attributes
    assert "SameSite=Lax" in header and "Path=/staff" in header
    assert f"Max-Age={app.config['LOGIN_DEVICE_DAYS'] * 86400}" in header
    value = header.split(";")[0].split("=", 1)[1]
    assert user.email.encode() not in base64_decode(value.split(".")[0])
    assert tokens.read_device_token(value, 60)[0] == user.id


def test_without_secure_session_cookies_the_device_cookie_is_not_secure_either(app, clock):
    user = make_staff()
    response = _post(fresh_client(app), _address(), user.email, PASSWORD)
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("staff_device_")]
    assert "Secure" not in header  # development over plain http would never send it back


def _forged(user) -> str:
    """A device cookie saying what the genuine one says, signed with another key."""
    forger = URLSafeTimedSerializer("not-the-secret-key-of-this-app", salt=tokens.DEVICE_SALT)
    return forger.dumps([user.id, devices.password_tag(user), "a-nonce-of-its-own"])


def _without_nonce(user) -> str:
    """A genuine device cookie as made before cookies had a nonce: it could never be locked."""
    return tokens._serializer(tokens.DEVICE_SALT).dumps([user.id, devices.password_tag(user)])


@pytest.mark.parametrize(
    "kind", ["forged", "expired", "another account's", "from before a new password", "without a nonce"]
)
def test_a_device_cookie_that_cannot_be_trusted_is_refused_at_the_ceiling(app, clock, kind):
    user, other = make_staff(), make_staff()
    browser = fresh_client(app)
    if kind == "forged":
        value = _forged(user)
    elif kind == "without a nonce":
        value = _without_nonce(user)
    elif kind == "another account's":
        value = _device_cookie(_owner_browser(app, other), other).value  # put under this account's name
    else:
        if kind == "expired":
            clock.shift(-timedelta(days=app.config["LOGIN_DEVICE_DAYS"], minutes=1))
        browser = _owner_browser(app, user)
        value = _device_cookie(browser, user).value
        clock.move_to(MOMENT)
        if kind == "from before a new password":
            user_admin.reset_password(user, "a brand new passphrase 77")
            db.session.commit()
    browser.set_cookie(f"staff_device_{user.id}", value, path="/staff")
    password = "a brand new passphrase 77" if kind == "from before a new password" else PASSWORD
    _attack(app, user.email, _ceiling(app))
    assert GENERIC in _post(browser, _address(), user.email, password).get_data(as_text=True)


def _ceiling_emails() -> list[EmailMessage]:
    emails = db.session.scalars(
        sa.select(EmailMessage).filter_by(template="staff_sign_in_ceiling").order_by(EmailMessage.id)
    ).all()
    for email in emails:
        render_pending(email)
    return emails


def test_the_admins_are_told_once_per_window_each_in_their_language(app, clock, caplog):
    target = make_staff(email="target@example.dk")
    english, danish = make_staff(Role.ADMIN), make_staff(Role.ADMIN, language="da")
    make_staff(Role.ADMIN, active=False)
    caplog.set_level(logging.WARNING, logger="leads.auth.ceiling")
    _attack(app, target.email, _ceiling(app) + 5)  # those past the ceiling are refused, not counted
    _attack(app, UNKNOWN, _ceiling(app))  # no account: nobody to tell about
    emails = _ceiling_emails()
    assert {email.to_address for email in emails} == {english.email, danish.email}
    by_admin = {email.to_address: email for email in emails}
    assert "target@example.dk" in by_admin[english.email].subject
    assert (
        f"has had {_ceiling(app)} wrong passwords in the current period of 1 hr"
        in by_admin[english.email].body_text
    )
    assert "/staff/admin/users" in by_admin[english.email].body_text
    assert 'lang="da"' in by_admin[danish.email].body_html
    for email in emails:
        assert "guess number" not in email.body_text + email.body_html  # no password tried
    assert [r.getMessage() for r in caplog.records if "target@example.dk" in r.getMessage()] == []
    assert any(f"user {target.id}" in r.getMessage() for r in caplog.records)

    clock.shift(timedelta(hours=1))  # the next window: counted afresh, told again
    assert _post(fresh_client(app), _address(), target.email, PASSWORD).status_code == 302
    _attack(app, target.email, _ceiling(app))
    assert len(_ceiling_emails()) == 4


def test_a_failure_in_a_later_window_removes_the_rows_of_earlier_ones(app, clock):
    make_staff(email="old@example.dk")
    _attack(app, "old@example.dk", 2)
    clock.shift(timedelta(hours=1))
    _attack(app, "someone-else@example.dk", 1)
    accounts = db.session.scalars(sa.select(LoginCeiling.account)).all()
    assert accounts == ["someone-else@example.dk"]


def test_an_admins_reset_lifts_the_ceiling(app, clock):
    user = make_staff()
    _attack(app, user.email, _ceiling(app))
    user_admin.reset_password(user, "a brand new passphrase 77")
    db.session.commit()
    assert _post(fresh_client(app), _address(), user.email, "a brand new passphrase 77").status_code == 302


def test_at_the_ceiling_a_copied_session_cannot_guess_the_current_password_but_the_owner_can_change_it(
    app, clock
):
    user = make_staff()
    owner = fresh_client(app)
    assert _post(owner, _address(), user.email, PASSWORD).status_code == 302
    copied = fresh_client(app)  # the session cookie alone, as a proxy log or malware might leak it
    session_cookie = app.config["SESSION_COOKIE_NAME"]
    copied.set_cookie(session_cookie, owner.get_cookie(session_cookie).value)
    _attack(app, user.email, _ceiling(app))
    new = "a brand new passphrase 77"
    change = {"current_password": PASSWORD, "new_password": new, "confirm_password": new}
    page = copied.post("/staff/account/password", data=change).get_data(as_text=True)
    assert "your account is locked for a while from here" in page
    response = owner.post("/staff/account/password", data=change)
    assert response.status_code == 302
    assert any(h.startswith(f"staff_device_{user.id}=") for h in response.headers.getlist("Set-Cookie"))


@pytest.mark.commits  # threads, each with a connection of its own
def test_parallel_failures_are_all_counted_and_the_ceiling_is_reached_once(app):
    """30 failures at once against a ceiling of 20: each counted, and the admins told once, though
    eleven calls find the ceiling reached."""
    reached = at_once(
        app,
        lambda: ceiling.record_failure(
            "target@example.dk", MOMENT, max_failures=20, window=timedelta(hours=1)
        ),
    )
    assert db.session.scalar(sa.select(LoginCeiling.failures).filter_by(account="target@example.dk")) == 30
    assert reached.count(True) == 1


def test_the_daily_retention_run_deletes_sign_in_failures_past_their_use_when_nobody_fails(app, clock):
    """The throttle's and the ceiling's rows hold the addresses typed into the sign-in form: each
    failure deletes the old ones, and the daily retention run does when no failure comes."""
    hour = timedelta(hours=1)
    this_window = windows.window_start(MOMENT, hour)
    db.session.add_all(
        [
            LoginThrottle(
                account="old@example.dk",
                client="192.0.2.1",
                failures=3,
                last_failure_at=MOMENT - 3 * 24 * hour,
            ),
            LoginThrottle(
                account="recent@example.dk",
                client="192.0.2.2",
                failures=3,
                last_failure_at=MOMENT - 47 * hour,
            ),
            LoginCeiling(account="old@example.dk", window_start=this_window - hour, failures=9),
            LoginCeiling(account="recent@example.dk", window_start=this_window, failures=9),
        ]
    )
    db.session.commit()

    result = privacy.apply_retention()

    # The throttle keeps a pair two days after its last failure; the ceiling, the current window.
    assert db.session.scalars(sa.select(LoginThrottle.account)).all() == ["recent@example.dk"]
    assert db.session.scalars(sa.select(LoginCeiling.account)).all() == ["recent@example.dk"]
    assert result.sign_in_records == 2

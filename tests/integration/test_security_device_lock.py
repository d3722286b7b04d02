"""The lock of one device cookie: a cookie copied off the owner's browser guesses from many
addresses only until the failures made with it reach LOGIN_DEVICE_MAX_FAILURES in a window; then
it is a new browser to the ceiling, while the account and the owner's other browsers keep theirs."""

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from leads.auth import device_lock, windows
from leads.extensions import db
from leads.models.staff import LoginCeiling, LoginDeviceLock
from leads.patients import privacy
from tests.integration.test_security_ceiling import (
    GENERIC,
    MOMENT,
    _address,
    _attack,
    _ceiling,
    _device_cookie,
    _owner_browser,
    _post,
)
from tests.staff_support import PASSWORD, at_once, fresh_client, make_staff

# Runs again on PostgreSQL: the counter is an upsert written per database.
pytestmark = pytest.mark.pg


@pytest.fixture
def clock():
    with time_machine.travel(MOMENT, tick=False) as traveller:
        yield traveller


def _limit(app) -> int:
    return app.config["LOGIN_DEVICE_MAX_FAILURES"]


def _copy_of(app, browser, user):
    """A browser of the attacker's holding the device cookie copied off `browser`, nothing else."""
    copy = fresh_client(app)
    copy.set_cookie(f"staff_device_{user.id}", _device_cookie(browser, user).value, path="/staff")
    return copy


def _guess_with(client, email: str, count: int) -> None:
    """`count` wrong passwords from `client`, each from a /64 network of its own."""
    for _ in range(count):
        assert GENERIC in _post(client, _address(), email, "guess number 7").get_data(as_text=True)


def _ceiling_count(email: str) -> int | None:
    return db.session.scalar(sa.select(LoginCeiling.failures).filter_by(account=email))


def test_a_copied_device_cookie_used_from_many_addresses_is_locked_and_meets_the_ceiling(app, clock, caplog):
    user = make_staff()
    laptop = _owner_browser(app, user)
    copy = _copy_of(app, laptop, user)
    caplog.set_level(logging.WARNING, logger="leads.auth.device_lock")

    _guess_with(copy, user.email, _limit(app))
    assert _ceiling_count(user.email) is None  # trusted until then: none counted against the account
    assert any(f"user {user.id}" in r.getMessage() for r in caplog.records)
    assert not any(user.email in r.getMessage() for r in caplog.records)
    _guess_with(copy, user.email, 1)
    assert _ceiling_count(user.email) == 1  # locked: its failures now count against the ceiling

    _attack(app, user.email, _ceiling(app) - 1)
    refused = _post(copy, _address(), user.email, PASSWORD)
    assert refused.status_code == 200 and GENERIC in refused.get_data(as_text=True)
    # The laptop it was copied from holds the same cookie: locked alike, until the window ends.
    assert _post(laptop, _address(), user.email, PASSWORD).status_code == 200


def test_the_device_count_names_no_account_and_no_address(app, clock):
    user = make_staff()
    copy = _copy_of(app, _owner_browser(app, user), user)
    _guess_with(copy, user.email, 2)
    [row] = db.session.scalars(sa.select(LoginDeviceLock)).all()
    assert row.failures == 2
    assert len(row.device) == 64 and int(row.device, 16) >= 0  # a SHA-256 hash, in hex
    assert _device_cookie(copy, user).value.split(".")[0] not in row.device


def test_one_failure_below_the_limit_the_copied_cookie_is_still_trusted(app, clock):
    user = make_staff()
    copy = _copy_of(app, _owner_browser(app, user), user)
    _guess_with(copy, user.email, _limit(app) - 1)
    _attack(app, user.email, _ceiling(app))
    assert _post(copy, _address(), user.email, PASSWORD).status_code == 302


def test_the_owners_other_browser_and_the_account_are_untouched_by_a_locked_cookie(app, clock):
    user = make_staff()
    phone = _owner_browser(app, user)
    copy = _copy_of(app, _owner_browser(app, user), user)
    _guess_with(copy, user.email, _limit(app))
    _attack(app, user.email, _ceiling(app))
    assert _post(fresh_client(app), _address(), user.email, PASSWORD).status_code == 200  # the ceiling
    assert _post(phone, _address(), user.email, PASSWORD).status_code == 302


def test_the_window_ending_restores_the_cookies_trust(app, clock):
    user = make_staff()
    copy = _copy_of(app, _owner_browser(app, user), user)
    _guess_with(copy, user.email, _limit(app))
    clock.shift(timedelta(minutes=app.config["LOGIN_DEVICE_WINDOW_MINUTES"]))
    _attack(app, user.email, _ceiling(app))  # the new window's ceiling: new browsers are refused
    assert _post(fresh_client(app), _address(), user.email, PASSWORD).status_code == 200
    assert _post(copy, _address(), user.email, PASSWORD).status_code == 302


def test_a_sign_in_gives_a_new_nonce_so_a_locked_cookie_is_replaced_by_a_trusted_one(app, clock):
    user = make_staff()
    laptop = _owner_browser(app, user)
    _guess_with(_copy_of(app, laptop, user), user.email, _limit(app))
    assert _post(laptop, _address(), user.email, PASSWORD).status_code == 302  # below the ceiling
    laptop.post("/staff/logout")
    _attack(app, user.email, _ceiling(app))
    assert _post(laptop, _address(), user.email, PASSWORD).status_code == 302


def test_wrong_current_passwords_on_the_change_password_form_count_against_the_device_cookie(app, clock):
    user = make_staff()
    browser = fresh_client(app)
    assert _post(browser, _address(), user.email, PASSWORD).status_code == 302
    wrong = {"current_password": "not my password", "new_password": "x" * 20, "confirm_password": "x" * 20}
    for _ in range(2):
        browser.environ_base["REMOTE_ADDR"] = _address()
        browser.post("/staff/account/password", data=wrong)
    assert db.session.scalar(sa.select(LoginDeviceLock.failures)) == 2


@pytest.mark.commits  # threads, each with a connection of its own
def test_parallel_failures_with_one_cookie_are_all_counted_and_lock_it_once(app):
    """30 failures at once with a limit of 20: each counted, and exactly one call locks it."""
    device = "d" * 64
    locked = at_once(
        app, lambda: device_lock.record_failure(device, MOMENT, max_failures=20, window=timedelta(hours=1))
    )
    assert db.session.scalar(sa.select(LoginDeviceLock.failures).filter_by(device=device)) == 30
    assert locked.count(True) == 1


def test_the_daily_retention_run_deletes_device_counts_of_ended_windows(app, clock):
    hour = timedelta(hours=1)
    this_window = windows.window_start(MOMENT, hour)
    db.session.add_all(
        [
            LoginDeviceLock(device="a" * 64, window_start=this_window - hour, failures=4),
            LoginDeviceLock(device="b" * 64, window_start=this_window, failures=4),
        ]
    )
    db.session.commit()

    result = privacy.apply_retention()

    assert db.session.scalars(sa.select(LoginDeviceLock.device)).all() == ["b" * 64]
    assert result.sign_in_records == 1

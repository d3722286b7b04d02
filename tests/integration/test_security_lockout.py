"""Sign-in throttling that cannot be turned against an account or used to tell accounts apart."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from leads.auth import accounts, throttle
from leads.extensions import db
from leads.models.staff import LoginThrottle
from leads.timeutil import utcnow
from tests.staff_support import PASSWORD, fresh_client, make_staff

# Runs again on PostgreSQL: the failure counter is an upsert written per database.
pytestmark = pytest.mark.pg

GENERIC = "That email and password did not work, or the account is locked for a while."


def _post(client, address, email, password):
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/staff/login", data={"email": email, "password": password})


def test_an_attacker_cannot_lock_the_owner_out_from_elsewhere(app):
    owner = make_staff()
    attacker = fresh_client(app)
    for _ in range(app.config["LOGIN_MAX_FAILURES"] * 3):
        _post(attacker, "198.51.100.7", owner.email, "guess")
    assert _post(fresh_client(app), "192.0.2.10", owner.email, PASSWORD).status_code == 302


def test_each_further_round_of_failures_waits_twice_as_long(app):
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"  # the per-address rate limit is tested elsewhere
    user = make_staff()
    client = fresh_client(app)
    limit, minutes = app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_LOCKOUT_MINUTES"]
    with time_machine.travel(utcnow(), tick=False) as clock:
        for _ in range(limit):
            _post(client, "198.51.100.8", user.email, "guess")
        clock.shift(timedelta(minutes=minutes + 1))
        for _ in range(limit):
            _post(client, "198.51.100.8", user.email, "guess")
        clock.shift(timedelta(minutes=minutes + 1))
        assert GENERIC in _post(client, "198.51.100.8", user.email, PASSWORD).get_data(as_text=True)
        clock.shift(timedelta(minutes=minutes))
        assert _post(client, "198.51.100.8", user.email, PASSWORD).status_code == 302


def test_the_same_work_and_the_same_answer_whatever_the_account_state(app, monkeypatch):
    known, inactive = make_staff(), make_staff(active=False)
    client = fresh_client(app)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _post(client, "198.51.100.9", known.email, "guess")  # known@…9 is now blocked
    verifies = []
    real_verify = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda h, p: verifies.append(h) or real_verify(h, p))
    cases = {
        "blocked, right password": ("198.51.100.9", known.email, PASSWORD),
        "known, wrong password": ("198.51.100.10", known.email, "guess"),
        "unknown address": ("198.51.100.11", "nobody@example.dk", "guess"),
        "deactivated, right password": ("198.51.100.12", inactive.email, PASSWORD),
    }
    pages = {}
    for name, (address, email, password) in cases.items():
        verifies.clear()
        response = _post(client, address, email, password)
        assert response.status_code == 200, name
        assert len(verifies) == 1, name  # exactly one real argon2 verify on every path
        assert verifies[0].startswith("$argon2id$"), name
        pages[name] = response.get_data(as_text=True).replace(email, "EMAIL")
    assert all(GENERIC in page for page in pages.values())
    assert len({_error_block(page) for page in pages.values()}) == 1


def _error_block(page: str) -> str:
    return page[page.index(GENERIC) - 200 : page.index(GENERIC) + 200]


@pytest.mark.commits  # threads, each with a connection of its own
def test_parallel_failures_are_all_counted(app):
    make_staff()
    now = utcnow()

    def fail_five_times():
        with app.app_context():
            for _ in range(5):
                throttle.record_failure(
                    "target@example.dk",
                    "203.0.113.5",
                    now,
                    max_failures=1000,
                    delay=timedelta(minutes=15),
                    max_delay=timedelta(hours=24),
                )
                db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=fail_five_times) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    assert db.session.scalar(sa.select(LoginThrottle.failures).filter_by(account="target@example.dk")) == 30

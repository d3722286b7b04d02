"""Sign-in throttling that cannot be turned against an account or used to tell accounts apart."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from leads.auth import accounts, throttle
from leads.extensions import db
from leads.models.staff import LoginThrottle
from leads.timeutil import utcnow
from tests.staff_support import PASSWORD, at_once, fresh_client, make_staff

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

    at_once(
        app,
        lambda: throttle.record_failure(
            "target@example.dk",
            "203.0.113.5",
            now,
            max_failures=1000,
            delay=timedelta(minutes=15),
            max_delay=timedelta(hours=24),
        ),
    )
    assert db.session.scalar(sa.select(LoginThrottle.failures).filter_by(account="target@example.dk")) == 30


def _in_one_network(count: int) -> list[str]:
    """`count` IPv6 addresses of one /64, the block a single home or server is usually given."""
    return [f"2001:db8:1:2:{n:x}::1" for n in range(1, count + 1)]


def test_addresses_of_one_ipv6_network_are_throttled_as_one_client(app):
    """Whoever holds a /64 has more addresses than anyone could try: counting each apart would
    give them a fresh allowance of guesses per address."""
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"  # the lockout alone
    user = make_staff()
    limit = app.config["LOGIN_MAX_FAILURES"]
    client = fresh_client(app)
    for address in _in_one_network(limit):
        _post(client, address, user.email, "guess")
    page = _post(client, "2001:db8:1:2:ffff::9", user.email, PASSWORD).get_data(as_text=True)
    assert GENERIC in page
    elsewhere = _post(fresh_client(app), "2001:db8:1:3::1", user.email, PASSWORD)
    assert elsewhere.status_code == 302  # the next /64 is another client


def test_an_ipv4_address_written_as_ipv6_is_the_same_client(app):
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    user = make_staff()
    client = fresh_client(app)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _post(client, "198.51.100.44", user.email, "guess")
    assert GENERIC in _post(client, "::ffff:198.51.100.44", user.email, PASSWORD).get_data(as_text=True)


def test_the_sign_in_rate_limit_counts_an_ipv6_network_as_one_client(app):
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    client = fresh_client(app)
    responses = [
        _post(client, address, f"nobody{n}@example.dk", "guess")
        for n, address in enumerate(_in_one_network(limit + 1))
    ]
    assert responses[-1].status_code == 429

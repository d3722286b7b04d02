"""The signed link in a provider's email: scoped to one assignment, tamper-proof, expiring."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.messaging.tokens import (
    ExpiredToken,
    InvalidToken,
    make_assignment_token,
    make_token,
    read_assignment_token,
)

FOURTEEN_DAYS = 14 * 24 * 3600


@pytest.fixture
def app():
    """A bare Flask app holding a secret key: the tokens read it from the current app, nothing more."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "testing-secret-key"
    with app.app_context():
        yield app


def test_a_token_names_its_assignment_and_is_safe_in_a_url(app):
    token = make_assignment_token(4711)
    assert read_assignment_token(token, max_age_seconds=FOURTEEN_DAYS) == 4711
    assert all(c.isalnum() or c in "-_." for c in token)
    assert make_assignment_token(4712) != token


def test_a_tampered_token_is_refused(app):
    token = make_assignment_token(17)
    payload, _, rest = token.partition(".")
    for forged in (
        # A character inside the signature: the last one may carry only padding bits.
        token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:],
        "MTg" + "." + rest,
        token[:-6],
        token + "x",
    ):
        with pytest.raises(InvalidToken):
            read_assignment_token(forged, max_age_seconds=FOURTEEN_DAYS)


def test_a_token_made_for_another_purpose_does_not_open_an_assignment(app):
    with pytest.raises(InvalidToken):
        read_assignment_token(make_token("patient-self-service", 17), max_age_seconds=FOURTEEN_DAYS)


def test_a_token_signed_with_another_secret_is_refused(app):
    token = make_assignment_token(17)
    app.config["SECRET_KEY"] = "another-secret-key-of-sufficient-length"
    with pytest.raises(InvalidToken):
        read_assignment_token(token, max_age_seconds=FOURTEEN_DAYS)


def test_a_token_older_than_allowed_has_expired(app):
    made = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    with time_machine.travel(made, tick=False):
        token = make_assignment_token(17)
    with time_machine.travel(made + timedelta(seconds=FOURTEEN_DAYS - 1), tick=False):
        assert read_assignment_token(token, max_age_seconds=FOURTEEN_DAYS) == 17
    with (
        time_machine.travel(made + timedelta(seconds=FOURTEEN_DAYS + 1), tick=False),
        pytest.raises(ExpiredToken, match="expired"),
    ):
        read_assignment_token(token, max_age_seconds=FOURTEEN_DAYS)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(garbage=st.text(max_size=200))
def test_any_string_is_either_a_genuine_token_or_refused_as_invalid(app, garbage):
    with pytest.raises(InvalidToken):
        read_assignment_token(garbage, max_age_seconds=FOURTEEN_DAYS)

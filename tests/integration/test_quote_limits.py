"""Per-client rate limits on POST /quote, kept in the real Redis, and what a patient sees when
Redis is gone (nothing unusual: the request goes through)."""

import html
import re

import pytest
import sqlalchemy as sa
from flask import Config

from leads.extensions import db
from leads.messaging import outbox
from leads.models import Lead, OutboxMessage
from tests.quote_support import (
    answers,
    client_with_own_address,
    limiter_keys,
    restart_redis_and_wait_for_the_limiter,
    stored_counts,
)


@pytest.fixture
def client(app, taxonomy):
    return client_with_own_address(app)


def test_the_eleventh_post_in_a_minute_gets_a_readable_429_page_with_the_answers_kept(
    client, app, redis_server
):
    incomplete = answers(app, consent_share=None)  # refused, but every attempt counts
    for _ in range(10):
        assert client.post("/quote", data=incomplete).status_code == 422
    assert limiter_keys(redis_server), "the counts live in Redis"

    response = client.post("/quote", data=answers(app))
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 429
    assert "<title>Error: " in page
    assert "You have sent this form many times in a short while" in page
    assert "Nothing new has been saved" in page and "please wait a minute" in page
    assert re.search(r'name="full_name"[^>]*value="Freja Ørsted"', page)
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert stored_counts()["Lead"] == 0


def test_another_client_is_not_held_up_by_one_clients_limit(app, taxonomy):
    busy = client_with_own_address(app)
    for _ in range(11):
        busy.post("/quote", data={})
    assert busy.post("/quote", data=answers(app)).status_code == 429
    assert client_with_own_address(app).post("/quote", data=answers(app)).status_code == 303


def test_the_limit_is_per_hour_too_and_configurable(client, app):
    app.config["QUOTE_RATE_LIMIT"] = "100 per minute;3 per hour"
    for _ in range(3):
        client.post("/quote", data={})
    assert client.post("/quote", data=answers(app)).status_code == 429


def test_showing_the_form_is_never_rate_limited(client):
    for _ in range(15):
        assert client.get("/quote").status_code == 200


def test_with_redis_stopped_the_patient_still_gets_through_and_the_lead_is_kept(client, app, redis_server):
    redis_server.stop()
    response = client.post("/quote", data=answers(app), follow_redirects=True)
    assert response.status_code == 200 and response.request.path == "/quote/thanks"
    lead = db.session.scalar(sa.select(Lead))
    assert lead.reference in response.get_data(as_text=True)
    route = db.session.scalar(sa.select(OutboxMessage).filter_by(task_name=outbox.ROUTE_LEAD))
    # Stored with its routing task; the beat sweep publishes it once Redis is back.
    assert route.payload["lead_id"] == lead.id and route.dispatched_at is None and route.last_error
    db.session.rollback()
    restart_redis_and_wait_for_the_limiter(app, redis_server)


def test_with_redis_stopped_the_limit_still_holds_in_memory_and_returns_to_redis(client, app, redis_server):
    redis_server.stop()
    for _ in range(10):
        client.post("/quote", data={})
    assert client.post("/quote", data=answers(app)).status_code == 429
    restart_redis_and_wait_for_the_limiter(app, redis_server)  # fails the test if it never does


class _ConfigCountingReads(Config):
    """The app's settings, counting how often one of them is read."""

    def __init__(self, config: Config, key: str):
        super().__init__(config.root_path, config)
        self.key, self.reads = key, 0

    def __getitem__(self, key):
        self.reads += key == self.key
        return super().__getitem__(key)


def test_reading_a_page_costs_the_limiter_nothing_and_a_post_is_still_counted(
    client, app, redis_server, monkeypatch
):
    """Every limit is on a POST, so a GET skips the limiter's work altogether: the form's limit is
    never even looked up (the limiter calls the route's limit function, which reads QUOTE_RATE_LIMIT,
    for every request whose limits it evaluates), and nothing is counted."""
    config = _ConfigCountingReads(app.config, "QUOTE_RATE_LIMIT")
    monkeypatch.setattr(app, "config", config)
    for _ in range(15):  # more than the POST limit allows
        assert client.get("/quote").status_code == 200
    head = client.head("/quote")  # a link checker's or a monitor's request: the form's headers
    assert head.status_code == 200 and head.get_data() == b""
    assert config.reads == 0
    assert not limiter_keys(redis_server)

    assert client.post("/quote", data={}).status_code == 422
    assert config.reads > 0, "the POST's limit was looked up"
    assert limiter_keys(redis_server), "the POST was counted"

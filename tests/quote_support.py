"""What the quote form tests share: a valid answer set, a form token old enough to pass the
time trap, and a client with an address of its own (rate limits are per client)."""

import itertools
import time
from datetime import timedelta

import redis
import sqlalchemy as sa

from leads import consent
from leads.directory.csv_io import import_providers
from leads.extensions import db
from leads.intake import form_token
from leads.messaging.email import render_pending
from leads.models import Consent, EmailMessage, Lead, LeadEvent, OutboxMessage
from leads.quotes.rules import QuoteInput
from leads.timeutil import utcnow
from tests.helpers import wait_until

VALID_ANSWERS = {
    "full_name": "Freja Ørsted",
    "email": "freja@example.org",
    "phone": "+45 20 12 34 56",
    "country": "DK",
    "preferred_language": "da",
    "treatment": "neurorehabilitation-spinal-cord-injury",
    "condition": "spinal-cord-injury-incomplete",
    "details": "Injured at C6 two years ago; walking with a frame.",
    "timeframe": "3-6-months",
    "budget": "20000-50000-eur",
    "contact_preference": "email",
    "consent_share": "y",
    "consent_contact": "y",
}

_addresses = itertools.count(1)


def aged_token(app, *, age: float = 10.0, version: str = consent.CURRENT_VERSION) -> str:
    """A form token as if the form had been shown `age` seconds ago."""
    return form_token.issue(app.config["SECRET_KEY"], consent_version=version, now=time.time() - age)


def answers(app, **changes) -> dict:
    """The valid answers with a fresh, aged token; `changes` replace fields (None drops one)."""
    data = {**VALID_ANSWERS, "form_token": aged_token(app), **changes}
    return {key: value for key, value in data.items() if value is not None}


def client_with_own_address(app):
    """A test client whose requests come from an address no other test uses."""
    number = next(_addresses) + int(time.time()) % 10_000 * 100
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
    return client


def stored_counts() -> dict[str, int]:
    """How many rows the intake writes exist, by model."""
    counts = {
        model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Lead, Consent, LeadEvent, OutboxMessage, EmailMessage)
    }
    db.session.rollback()
    return counts


NOTHING_STORED = {"Lead": 0, "Consent": 0, "LeadEvent": 0, "OutboxMessage": 0, "EmailMessage": 0}


def limiter_keys(redis_server) -> list[bytes]:
    """The rate limiter's counters in Redis."""
    return redis.Redis.from_url(redis_server.url).keys("LIMITS:*")


def restart_redis_and_wait_for_the_limiter(app, redis_server) -> None:
    """Start Redis again and wait until the rate limiter counts in it, not in memory, again."""
    if redis_server.process is None:
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushdb()
    client = client_with_own_address(app)

    def counting_in_redis():
        client.post("/quote", data={})
        return limiter_keys(redis_server)

    wait_until(counting_in_redis, timeout=60, interval=0.5)
    redis.Redis.from_url(redis_server.url).flushdb()


def confirmation() -> EmailMessage:
    """The patient's confirmation, rendered as the worker that sends it renders it (the request
    that stored the lead only queues what renders it)."""
    email = db.session.scalar(sa.select(EmailMessage).filter_by(template="patient_confirmation"))
    render_pending(email)
    return email


def offer(price_from: int = 20000, price_to: int = 25000, *, valid_days: int = 30) -> QuoteInput:
    """A plain quote in EUR (20,000 to 25,000 unless told), treatment included, starting in a month."""
    return QuoteInput(
        price_from=price_from,
        price_to=price_to,
        currency="EUR",
        includes=["treatment"],
        earliest_start=utcnow().date() + timedelta(days=30),
        valid_days=valid_days,
        needs_records=False,
        message="",
    )


def a_clinic_left_for(lead) -> Lead:
    """One more clinic for the lead's treatment and condition, for a re-route to find; the lead."""
    lead = db.session.get(Lead, lead.id)
    import_providers(
        "name,city,region,notification_emails,languages,notification_language,weekly_capacity,treatments,conditions\n"
        f"Late Clinic,Odense,Syddanmark,intake@late.example,en,en,50,{lead.treatment.slug}:approved,"
        f"{lead.condition.slug}\n"
    )
    db.session.commit()
    return lead

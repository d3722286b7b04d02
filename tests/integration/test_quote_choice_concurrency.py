"""Two tabs choosing two different quotes at the same moment end with exactly one choice
(the lead row is locked: FOR UPDATE on PostgreSQL; on SQLite, one writer at a time)."""

import threading

import pytest
import sqlalchemy as sa

from leads.dev import seed
from leads.extensions import db
from leads.models import Assignment, Lead, LeadEvent, Quote
from leads.quotes import service as quotes
from leads.routing import responses
from leads.routing.service import route_lead
from tests.factories import LeadFactory
from tests.quote_support import offer

# Each choice runs in its own thread and connection: the data must really be committed.
pytestmark = [pytest.mark.commits, pytest.mark.pg]


def test_two_concurrent_choices_of_different_quotes_end_with_exactly_one(app, taxonomy):
    seed.load_demo_providers()
    lead = LeadFactory()
    db.session.commit()
    route_lead(lead.id)
    first, second = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()[:2]
    quote_ids = []
    for price, assignment in ((20000, first), (25000, second)):
        responses.accept(assignment.id, note=None)
        quote_ids.append(quotes.send_quote(assignment.id, offer(price, price)).id)
    lead_id = lead.id
    db.session.remove()

    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def choose(quote_id: int) -> None:
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                quotes.choose_quote(lead_id, quote_id, seen_revision=1)
                outcomes[quote_id] = "chosen"
            except quotes.QuoteRefused as refused:
                outcomes[quote_id] = str(refused)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=choose, args=(quote_id,)) for quote_id in quote_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes.values()) == [
        "You have already chosen a clinic, so this choice was not made.",
        "chosen",
    ]
    statuses = sorted(db.session.scalars(sa.select(Quote.status)))
    assert statuses == ["chosen", "not_chosen"]
    assert db.session.get(Lead, lead_id).status == "chosen"
    chosen_events = db.session.scalars(
        sa.select(LeadEvent).filter_by(lead_id=lead_id, kind="quote_chosen")
    ).all()
    assert len(chosen_events) == 1

"""Escalation with a controlled clock: one reminder, then expiry and the next-best provider,
then unroutable; Danish working days; each step once however often beat fires."""

from datetime import datetime

import pytest
import sqlalchemy as sa
import time_machine
from flask import current_app

from leads.dev import seed
from leads.extensions import db
from leads.models import Assignment, EmailMessage, Lead, LeadEvent, Provider
from leads.routing import escalation
from leads.routing.escalation import escalate_assignments
from leads.routing.service import route_lead
from leads.workdays import DANISH_TIME
from tests.factories import LeadFactory

# Escalation steps are guarded updates, which must happen once on PostgreSQL too.
pytestmark = pytest.mark.pg

TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=DANISH_TIME)


def _at(*args):
    return time_machine.travel(datetime(*args, tzinfo=DANISH_TIME), tick=False)


def _route_at(moment, top_n):
    """A lead routed at `moment` to the best `top_n` demo providers."""
    current_app.config["ROUTING_TOP_N"] = top_n
    with time_machine.travel(moment, tick=False):
        seed.load_demo_providers()
        lead = LeadFactory()
        db.session.commit()
        assert route_lead(lead.id) == "routed"
    return lead.id


def _beat(times=1):
    for _ in range(times):
        escalate_assignments()


def _count(model, **filters):
    value = db.session.scalar(sa.select(sa.func.count()).select_from(model).filter_by(**filters))
    db.session.rollback()
    return value


def _assignments(lead_id):
    rows = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead_id).order_by(Assignment.rank)
    ).all()
    return [(a.provider.name, a.status) for a in rows]


@pytest.fixture
def lead_with_one_provider(app, taxonomy):
    return _route_at(TUESDAY_10, top_n=1)


def test_a_silent_provider_gets_exactly_one_reminder_after_one_working_day(lead_with_one_provider):
    lead_id = lead_with_one_provider
    with _at(2026, 11, 25, 9, 59):
        _beat(3)
    assert _count(LeadEvent, lead_id=lead_id, kind="provider_reminded") == 0
    with _at(2026, 11, 25, 10, 30):
        _beat(10)
    assert _count(LeadEvent, lead_id=lead_id, kind="provider_reminded") == 1
    reminders = db.session.scalars(
        sa.select(EmailMessage).where(EmailMessage.template.like("provider_reminder%"))
    ).all()
    assert len(reminders) == 1
    # In the clinic's notification language (the demo clinic reads Danish), with the date its way,
    # and the moment of the expiry in Danish time, named: not only its day, which the clinic would
    # read as "by the end of that day" (the request is passed on at 10.00).
    assert "Påmindelse" in reminders[0].subject
    assert "27. november 2026 10.00 CET" in reminders[0].body_text
    assert "27. november 2026 10.00 CET" in reminders[0].body_html


def test_after_three_working_days_the_assignment_expires_once_and_the_next_provider_is_asked(
    lead_with_one_provider,
):
    lead_id = lead_with_one_provider
    [(first_name, _)] = _assignments(lead_id)
    with _at(2026, 11, 27, 10, 1):
        _beat(10)
    rows = _assignments(lead_id)
    assert rows[0] == (first_name, "expired")
    assert len(rows) == 2 and rows[1][1] == "notified" and rows[1][0] != first_name
    assert _count(LeadEvent, lead_id=lead_id, kind="assignment_expired") == 1
    assert db.session.get(Lead, lead_id).status == "routed"
    # The expiry counts against the silent provider, stored where routing reads it.
    silent = db.session.scalar(sa.select(Provider).filter_by(name=first_name))
    assert (silent.unanswered_count, silent.response_count) == (1, 0)


def test_when_no_provider_is_left_the_lead_becomes_unroutable_with_the_reason(lead_with_one_provider):
    lead_id = lead_with_one_provider
    with _at(2026, 11, 27, 10, 1):
        _beat()
    # The replacement, asked on Friday, expires three working days later: Wednesday.
    with _at(2026, 12, 2, 10, 2):
        _beat(10)
    assert [status for _, status in _assignments(lead_id)] == ["expired", "expired"]
    lead = db.session.get(Lead, lead_id)
    assert lead.status == "unroutable"
    assert lead.status_reason
    with _at(2026, 12, 9, 10, 0):
        _beat(10)
    assert _count(LeadEvent, lead_id=lead_id, kind="assignment_expired") == 2
    assert _count(LeadEvent, lead_id=lead_id, kind="rerouted") == 2


def test_an_answered_assignment_is_never_reminded_or_expired(lead_with_one_provider):
    from leads.routing.responses import accept

    lead_id = lead_with_one_provider
    [assignment_id] = db.session.scalars(sa.select(Assignment.id).filter_by(lead_id=lead_id)).all()
    with _at(2026, 11, 24, 15, 0):
        accept(assignment_id, note=None)
    with _at(2026, 12, 10, 10, 0):
        _beat(3)
    assert _assignments(lead_id)[0][1] == "accepted"
    assert _count(LeadEvent, lead_id=lead_id, kind="provider_reminded") == 0


def test_christmas_holidays_and_the_weekend_do_not_count(app, taxonomy):
    lead_id = _route_at(datetime(2026, 12, 24, 10, 0, tzinfo=DANISH_TIME), top_n=1)
    with _at(2026, 12, 27, 12, 0):  # Christmas Day, Boxing Day and a Sunday later
        _beat()
    assert _count(LeadEvent, lead_id=lead_id, kind="provider_reminded") == 0
    with _at(2026, 12, 28, 10, 1):
        _beat()
    assert _count(LeadEvent, lead_id=lead_id, kind="provider_reminded") == 1


def test_a_backlog_of_reminded_assignments_never_holds_newer_reminders_up(app, taxonomy, monkeypatch):
    """A long holiday's backlog: every due row is reached batch after batch, and one already
    reminded waits for its expiry without taking a place in the batch."""
    monkeypatch.setattr(escalation, "BATCH", 2)
    for _ in range(3):
        _route_at(TUESDAY_10, top_n=1)
    with _at(2026, 11, 25, 10, 30):
        _beat()
    assert _count(LeadEvent, kind="provider_reminded") == 3
    newer = _route_at(datetime(2026, 11, 25, 11, 0, tzinfo=DANISH_TIME), top_n=1)
    with _at(2026, 11, 26, 11, 30):
        _beat()
    assert _count(LeadEvent, lead_id=newer, kind="provider_reminded") == 1
    assert _count(LeadEvent, kind="assignment_expired") == 0

""" "Same patient" and "the first request of a duplicate chain": one definition each, used by
intake's duplicate check, routing's already-tried providers and the coordinator's verdict."""

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Lead, same_patient
from tests.factories import LeadFactory

# SQL functions, guarded updates and row locks: run again on PostgreSQL.
pytestmark = pytest.mark.pg


def _matching(email, phone):
    return set(db.session.scalars(sa.select(Lead.reference).where(same_patient(email, phone))))


def test_the_same_patient_is_the_same_email_in_any_case_or_the_same_phone(app, taxonomy):
    by_email = LeadFactory(email="Freja@Example.org", phone="+4520000001")
    by_phone = LeadFactory(email="other@example.org", phone="+4520000002")
    LeadFactory(email="stranger@example.org", phone="+4520000003")
    db.session.commit()

    assert _matching("freja@example.ORG", "+4599999999") == {by_email.reference}
    assert _matching("nobody@example.org", "+4520000002") == {by_phone.reference}
    assert _matching(None, None) == set()


def test_a_duplicate_chain_is_followed_to_its_first_request(app, taxonomy):
    first = LeadFactory()
    second = LeadFactory(duplicate_of=first)
    third = LeadFactory(duplicate_of=second)
    db.session.commit()

    assert third.original is first
    assert first.original is first


def test_a_looping_chain_stops_instead_of_running_forever(app, taxonomy):
    one, two = LeadFactory(), LeadFactory()
    db.session.flush()
    one.duplicate_of_id, two.duplicate_of_id = two.id, one.id
    db.session.flush()
    db.session.expire_all()

    assert one.original is two

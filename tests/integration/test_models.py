"""The data model on a migrated database: references, status changes, constraints."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from leads.extensions import db
from leads.models import Consent, Lead, LeadEvent, find_by_reference, schema_objects_of
from leads.models.lead import REFERENCE_ALPHABET
from leads.timeutil import utcnow
from leads.workflow import IllegalTransition
from tests.factories import LeadFactory

# Migrations and foreign keys: the schema must come out the same on PostgreSQL.
pytestmark = pytest.mark.pg


@pytest.mark.commits  # reads the schema through a connection of its own from the engine
def test_migrations_create_exactly_the_schema_the_models_describe(app):
    with db.engine.connect() as connection:
        include = schema_objects_of(connection.dialect.name)
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "include_object": include}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_a_new_lead_gets_a_readable_public_reference_and_utc_timestamps(app, taxonomy):
    lead = LeadFactory()
    db.session.commit()
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert lead.reference.startswith("Q-") and len(lead.reference) == 8
    assert set(lead.reference[2:]) <= set(REFERENCE_ALPHABET)
    assert lead.created_at.tzinfo is not None
    assert abs((utcnow() - lead.created_at).total_seconds()) < 60


@pytest.mark.parametrize("typed", ["Q-QK3M9P", "q-qk3m9p", "QQK3M9P", "QK3M9P", "qk3m9p", " Q QK3 M9P "])
def test_a_reference_is_found_as_people_type_it_even_when_its_code_starts_with_q(app, taxonomy, typed):
    lead = LeadFactory(reference="Q-QK3M9P")  # Q is a code letter as well as the prefix
    LeadFactory(reference="Q-K3M9PQ")
    db.session.flush()
    assert find_by_reference(typed) == lead


@pytest.mark.parametrize("typed", ["", "Q-", "Q", "K3M9P", "Q-QK3M9", "QQQK3M9P", "Q-QK3M9P\x00"])
def test_text_that_cannot_be_a_reference_finds_nothing(app, taxonomy, typed):
    LeadFactory(reference="Q-QK3M9P")
    db.session.flush()
    assert find_by_reference(typed) is None


def test_change_status_records_an_event_with_from_and_to(app, taxonomy):
    lead = LeadFactory()
    lead.change_status("routed", actor_type="system", note="3 providers")
    db.session.commit()
    events = db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id)).all()
    assert [(e.from_status, e.to_status, e.actor_type) for e in events] == [("new", "routed", "system")]
    assert lead.status == "routed"


def test_an_illegal_status_change_leaves_the_lead_and_history_untouched(app, taxonomy):
    lead = LeadFactory()
    db.session.commit()
    with pytest.raises(IllegalTransition):
        lead.change_status("booked", actor_type="staff")
    db.session.commit()
    assert lead.status == "new"
    assert db.session.scalar(sa.select(sa.func.count(LeadEvent.id))) == 0


def test_foreign_keys_are_enforced(app, taxonomy):
    db.session.add(
        Consent(
            lead_id=999_999, text_version="v1", share_with_providers=True, contact=True, source_form="quote"
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.commit()
    db.session.rollback()

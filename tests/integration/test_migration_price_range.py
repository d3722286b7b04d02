"""Migration 0006q: the old free-text first price range of an acceptance leaves the assignment
table and stays readable as an event in the lead's history."""

from datetime import UTC, datetime

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db

# A second app on a database file of its own, migrated step by step.
pytestmark = pytest.mark.commits

NOW = datetime(2026, 11, 1, 10, tzinfo=UTC)
STAMPS = {"created_at": NOW, "updated_at": NOW}
PROVIDER = {
    "city": "Aarhus", "region": "Midt", "notification_emails": [], "languages": [],
    "notification_language": "en", "weekly_capacity": 5, "active": True, "is_demo": False,
    "response_count": 0, "accepted_count": 0, **STAMPS,
}  # fmt: skip
ASSIGNMENT = {"lead_id": 1, "score": 1.0, "score_breakdown": {}, "created_at": NOW}


# One treatment and one condition, the leads' (id 1 each).
TAXONOMY = {
    "treatment": [
        {"id": 1, "slug": "t", "name": "T", "description": "", "evidence_status": "approved",
         "requires_review": False, "active": True, "sort_order": 0},
    ],
    "condition": [{"id": 1, "slug": "c", "name": "C", "category": "x", "active": True, "sort_order": 0}],
}  # fmt: skip


def insert_rows(connection, rows: dict[str, list[dict]]) -> None:
    """Write rows into the tables as the database has them at this revision: each row's values
    for the columns its table has, tables in the order given."""
    tables = sa.MetaData()
    tables.reflect(connection)
    for name, values in rows.items():
        table = tables.tables[name]
        connection.execute(table.insert(), [{k: v for k, v in row.items() if k in table.c} for row in values])


def _rows(connection):
    """A lead with an acceptance that gave a price range and a decline that did not, written
    into the tables as revision 0005 has them."""
    rows = {
        **TAXONOMY,
        "provider": [
            {"id": 1, "name": "Aarhus Spine", **PROVIDER},
            {"id": 2, "name": "Odense Neuro", **PROVIDER},
        ],
        "lead": [
            {"id": 1, "reference": "Q-AAAAAA", "status": "contacted", "full_name": "P",
             "email": "p@example.org", "phone": "+4520123456", "country": "DK", "preferred_language": "en",
             "treatment_id": 1, "condition_id": 1, "details": "", "timeframe": "not-sure",
             "budget": "not-sure", "contact_preference": "email", **STAMPS},
        ],
        "assignment": [
            {"id": 1, "provider_id": 1, "rank": 1, "status": "accepted", "price_range": "EUR 20-30k",
             "responded_at": NOW, **ASSIGNMENT},
            {"id": 2, "provider_id": 2, "rank": 2, "status": "declined", "price_range": None,
             "responded_at": NOW, **ASSIGNMENT},
        ],
    }  # fmt: skip
    insert_rows(connection, rows)


def test_a_stored_first_price_range_becomes_a_history_event_and_its_column_goes(tmp_path):
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        flask_migrate.upgrade(revision="0005")
        with db.engine.begin() as connection:
            _rows(connection)
        flask_migrate.upgrade(revision="0006q")
        with db.engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("assignment")}
            events = connection.execute(
                sa.text("SELECT lead_id, kind, actor_type, actor_provider_id, note FROM lead_event")
            ).all()
        db.engine.dispose()
    assert "price_range" not in columns and "quote_reminded_at" in columns
    assert [tuple(e) for e in events] == [
        (1, "first_price_range", "provider", 1, "First price range given on acceptance: EUR 20-30k")
    ]

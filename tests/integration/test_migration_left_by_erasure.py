"""Migration 0017l: requests an erasure at its deadline left before this release (each has the note
it wrote into their history) are put on the coordinators' list from that note's time, unless
erased since; others are not; and the column and its index go again on the way down."""

from datetime import UTC, datetime, timedelta

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from leads.timeutil import UTCDateTime
from tests.integration.test_migration_price_range import TAXONOMY, insert_rows
from tests.integration.test_migration_provider_stats import LEAD
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step, on either database.
pytestmark = [pytest.mark.commits, pytest.mark.pg]

THEN = datetime(2026, 11, 1, 10, tzinfo=UTC)
# The note such an erasure wrote into each request it left, as that release wrote it.
LEFT = (
    "The data of Q-000009 was erased at its erasure deadline; this request, linked to it by its "
    "email address, a phone number or a duplicate mark, was not: check whether it is the same "
    "patient's, and erase it from this page if so."
)
# Lead: its notes (actor, text, days after THEN) and whether it was erased since.
LEADS = {
    1: ([("system", LEFT, 2), ("system", LEFT, 5)], None),  # left twice: listed from the first
    2: ([("system", LEFT, 2)], THEN + timedelta(days=3)),  # erased by an admin since
    3: ([("staff", "Called the patient.", 1)], None),
    4: ([], None),
}
LEADS_TABLE = sa.table("lead", sa.column("id"), sa.column("left_by_erasure_at", UTCDateTime()))


def _rows(connection) -> None:
    insert_rows(
        connection,
        {
            **TAXONOMY,
            "lead": [
                {"id": n, "reference": f"Q-{n:06d}", **LEAD, "email": f"p{n}@example.org",
                 "email_key": f"p{n}@example.org", "anonymised_at": erased}
                for n, (_, erased) in LEADS.items()
            ],
            "lead_event": [
                {"lead_id": n, "kind": "note", "actor_type": actor, "note": note,
                 "created_at": THEN + timedelta(days=days)}
                for n, (notes, _) in LEADS.items()
                for actor, note, days in notes
            ],
        },
    )  # fmt: skip


def test_requests_left_before_are_listed_from_their_note_and_the_column_goes_on_the_way_down(
    database_url, tmp_path
):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0016r")
            with db.engine.begin() as connection:
                _rows(connection)
            flask_migrate.upgrade(revision="0017l")
            with db.engine.connect() as connection:
                listed = dict(connection.execute(sa.select(LEADS_TABLE).order_by(LEADS_TABLE.c.id)).all())
                indexes = {i["name"] for i in sa.inspect(connection).get_indexes("lead")}
            flask_migrate.downgrade(revision="0016r")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("lead")}
                indexes_after = {i["name"] for i in sa.inspect(connection).get_indexes("lead")}
            db.engine.dispose()
    assert listed == {1: THEN + timedelta(days=2), 2: None, 3: None, 4: None}
    assert "ix_lead_left_by_erasure" in indexes
    assert "left_by_erasure_at" not in columns and "ix_lead_left_by_erasure" not in indexes_after

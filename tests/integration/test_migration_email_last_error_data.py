"""Migration 0021r: an email's reason for not going out gets a column for what it says
(`last_error_data`); emails stopped before keep their English text and no data, so the lead page
shows them as stored; the column goes again on the way down, the text staying."""

from datetime import UTC, datetime

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from tests.integration.test_migration_price_range import insert_rows
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step, on either database.
pytestmark = [pytest.mark.commits, pytest.mark.pg]

THEN = datetime(2026, 11, 1, 10, tzinfo=UTC)
CANCELLED = "Not sent: the patient withdrew consent."
SAID = {"what": "email_not_sent", "why": {"what": "because_withdrawn"}}
EMAILS = sa.table(
    "email_message", sa.column("id"), sa.column("last_error"), sa.column("last_error_data", sa.JSON)
)


def _email(number: int, **changes) -> dict:
    return {
        "id": number, "idempotency_key": f"k{number}", "template": "provider_notification",
        "to_address": "clinic@example.dk", "subject": "", "body_text": "", "body_html": "",
        "message_id": f"<m{number}@example.org>", "status": "cancelled", "attempts": 0,
        "created_at": THEN, "last_error": CANCELLED, **changes,
    }  # fmt: skip


def test_emails_stopped_before_keep_their_text_and_new_ones_say_why_as_data(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0021s")
            with db.engine.begin() as connection:
                insert_rows(connection, {"email_message": [_email(1)]})
            flask_migrate.upgrade(revision="0021r")
            with db.engine.begin() as connection:
                insert_rows(connection, {"email_message": [_email(2, last_error_data=SAID)]})
                upgraded = connection.execute(sa.select(EMAILS).order_by(EMAILS.c.id)).all()
            flask_migrate.downgrade(revision="0021s")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("email_message")}
                texts = connection.scalars(sa.text("SELECT last_error FROM email_message ORDER BY id")).all()
            db.engine.dispose()
    assert [tuple(row) for row in upgraded] == [(1, CANCELLED, None), (2, CANCELLED, SAID)]
    assert "last_error_data" not in columns
    assert texts == [CANCELLED, CANCELLED]

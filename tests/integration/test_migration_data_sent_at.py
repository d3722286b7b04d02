"""Migration 0021e: emails get a mark for the moment a sender sends DATA (`data_sent_at`). Emails
that exist get none, whatever their status (nothing tells how far their attempts went), so no
delivery after the upgrade is said to have maybe arrived twice on their account; and the column
goes again on the way down."""

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
EMAILS = sa.table("email_message", sa.column("id"), sa.column("status"), sa.column("data_sent_at"))


def _email(number: int, status: str) -> dict:
    return {
        "id": number, "idempotency_key": f"k{number}", "template": "test_message",
        "to_address": "p@example.org", "subject": "S", "body_text": "T", "body_html": "<p>T</p>",
        "message_id": f"<m{number}@example.org>", "status": status, "attempts": 1, "created_at": THEN,
    }  # fmt: skip


def test_existing_emails_get_no_data_mark_and_the_column_goes_on_the_way_down(database_url, tmp_path):
    statuses = ("queued", "sending", "sent", "failed")
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0021r")
            with db.engine.begin() as connection:
                insert_rows(connection, {"email_message": [_email(n, s) for n, s in enumerate(statuses, 1)]})
            flask_migrate.upgrade(revision="0021e")
            with db.engine.connect() as connection:
                marks = dict(connection.execute(sa.select(EMAILS.c.status, EMAILS.c.data_sent_at)).all())
            flask_migrate.downgrade(revision="0021r")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("email_message")}
                kept = sorted(connection.execute(sa.select(EMAILS.c.status)).scalars())
            db.engine.dispose()
    assert marks == dict.fromkeys(statuses)
    assert "data_sent_at" not in columns
    assert kept == sorted(statuses)

"""Migration 0013a: the access log's user and lead indexes become (user, id) and (lead, id), and
(action, id) is added, so the log's page reads each filter's newest entries in order; and back."""

from datetime import UTC, datetime

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step, on either database.
pytestmark = [pytest.mark.commits, pytest.mark.pg]

ENTRIES = [
    {"id": n, "user_id": None, "lead_id": None, "action": action, "detail": "command line",
     "created_at": datetime(2026, 11, 1, 10, tzinfo=UTC)}
    for n, action in enumerate(["patient_export", "erasure", "patient_export"], start=1)
]  # fmt: skip


def _indexes(connection) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in sa.inspect(connection).get_indexes("access_log")}


def test_the_access_log_gets_an_index_per_filter_in_id_order_and_loses_it_again(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0012b")
            log = sa.table("access_log", *(sa.column(name) for name in ENTRIES[0]))
            with db.engine.begin() as connection:
                connection.execute(log.insert(), ENTRIES)
            flask_migrate.upgrade(revision="0013a")
            with db.engine.connect() as connection:
                upgraded = _indexes(connection)
                kept = connection.scalars(sa.text("SELECT id FROM access_log ORDER BY id")).all()
            flask_migrate.downgrade(revision="0012b")
            with db.engine.connect() as connection:
                downgraded = _indexes(connection)
            db.engine.dispose()
    assert upgraded == {
        "ix_access_log_created_at": ["created_at"],
        "ix_access_log_user_id_id": ["user_id", "id"],
        "ix_access_log_lead_id_id": ["lead_id", "id"],
        "ix_access_log_action_id": ["action", "id"],
    }
    assert kept == [1, 2, 3]
    assert downgraded == {
        "ix_access_log_created_at": ["created_at"],
        "ix_access_log_user_id": ["user_id"],
        "ix_access_log_lead_id": ["lead_id"],
    }

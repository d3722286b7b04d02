"""Migration 0020p: staff accounts that exist keep the password they have (nothing tells whether
it was handed over), so none must change it; new rows get false from the database's default; and
the column goes again on the way down."""

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
USER = {"password_hash": "not used here", "role": "coordinator", "active": True, "created_at": THEN}
USERS = sa.table("user", sa.column("id"), sa.column("email"), sa.column("must_change_password"))


def test_existing_accounts_need_not_change_their_password_and_the_column_goes_on_the_way_down(
    database_url, tmp_path
):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0019w")
            with db.engine.begin() as connection:
                insert_rows(connection, {"user": [{"id": 1, "email": "old@example.dk", **USER}]})
            flask_migrate.upgrade(revision="0020p")
            with db.engine.begin() as connection:
                insert_rows(connection, {"user": [{"id": 2, "email": "new@example.dk", **USER}]})
                flags = dict(connection.execute(sa.select(USERS.c.id, USERS.c.must_change_password)).all())
            flask_migrate.downgrade(revision="0019w")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("user")}
                emails = set(connection.execute(sa.select(USERS.c.email)).scalars())
            db.engine.dispose()
    assert flags == {1: False, 2: False}
    assert "must_change_password" not in columns
    assert emails == {"old@example.dk", "new@example.dk"}

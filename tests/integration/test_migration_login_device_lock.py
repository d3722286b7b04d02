"""Migration 0022d: the device cookies' lock table, one row per cookie and window (the upsert's
conflict target), and gone again on the way down."""

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

WINDOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
ROW = {"device": "d" * 64, "window_start": WINDOW, "failures": 10}


def test_one_row_per_device_cookie_and_window_and_the_table_goes_on_the_way_down(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0022d")
            with db.engine.begin() as connection:
                insert_rows(connection, {"login_device_lock": [{"id": 1, **ROW}]})
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
                insert_rows(connection, {"login_device_lock": [{"id": 2, **ROW}]})
            flask_migrate.downgrade(revision="0021e")
            with db.engine.connect() as connection:
                tables = set(sa.inspect(connection).get_table_names())
            db.engine.dispose()
    assert "login_device_lock" not in tables
    assert "login_ceiling" in tables

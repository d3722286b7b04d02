"""Migration 0014p: every provider gets its name key under a unique index, on either database; names
that are the same in any case stop it before anything changes, naming the providers to rename."""

import alembic.command
import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from tests.integration.test_migration_price_range import PROVIDER, insert_rows
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step; the backfill runs on both databases.
pytestmark = [pytest.mark.commits, pytest.mark.pg]


def _providers(*names: str) -> dict:
    return {"provider": [{"id": n, "name": name, **PROVIDER} for n, name in enumerate(names, start=1)]}


def test_each_provider_gets_its_name_in_any_case_under_a_unique_index(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0013a")
            with db.engine.begin() as connection:
                insert_rows(connection, _providers("Øresund Klinik", "Straße  Klinik", "Nordic Clinic"))
            flask_migrate.upgrade(revision="0014p")
            with db.engine.connect() as connection:
                keys = connection.execute(sa.text("SELECT id, name_key FROM provider ORDER BY id")).all()
                [index] = [
                    i
                    for i in sa.inspect(connection).get_indexes("provider")
                    if i["name"] == "ix_provider_name_key"
                ]
            with db.engine.connect() as connection, pytest.raises(sa.exc.IntegrityError):
                insert_rows(
                    connection,
                    {
                        "provider": [
                            {"id": 4, "name": "ØRESUND KLINIK", "name_key": "øresund klinik", **PROVIDER}
                        ]
                    },
                )
            flask_migrate.downgrade(revision="0013a")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("provider")}
            db.engine.dispose()
    assert [tuple(row) for row in keys] == [
        (1, "øresund klinik"),
        (2, "strasse klinik"),
        (3, "nordic clinic"),
    ]
    assert index["column_names"] == ["name_key"] and index["unique"]
    assert "name_key" not in columns


def test_names_the_same_in_any_case_stop_the_migration_and_are_named(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0013a")
            names = ("Nordic Clinic", "Øresund Klinik", "NORDIC CLINIC", "øRESUND KLINIK", "Aarhus Spine")
            with db.engine.begin() as connection:
                insert_rows(connection, _providers(*names))
            # Through Alembic itself: `flask db upgrade` prints the same message and exits with 1.
            with pytest.raises(RuntimeError) as stopped:
                alembic.command.upgrade(app.extensions["migrate"].migrate.get_config(), "0014p")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("provider")}
                revision = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
                kept = connection.scalars(sa.text("SELECT name FROM provider ORDER BY id")).all()
            db.engine.dispose()
    assert str(stopped.value) == (
        "Migration 0014p stopped before changing anything: these providers have the same name in any "
        "case: 'Nordic Clinic' (id 1) and 'NORDIC CLINIC' (id 3); 'Øresund Klinik' (id 2) and "
        "'øRESUND KLINIK' (id 4). Rename all but one of each in the provider directory, then run the "
        "migration again."
    )
    assert "name_key" not in columns and revision == "0013a"
    assert kept == list(names)

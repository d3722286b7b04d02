"""Migration 0021k: the provider name's case-sensitive unique key goes, the unique key on the name
in any case (0014p) stays and refuses what it refused; the providers and every row that points at
them stay, on either database (SQLite copies the table); the way down brings the key back."""

import alembic.command
import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from tests.integration.test_migration_price_range import ASSIGNMENT, PROVIDER, STAMPS, TAXONOMY, insert_rows
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step, on either database.
pytestmark = [pytest.mark.commits, pytest.mark.pg]

LEAD = {
    "reference": "Q-AAAAAA", "status": "routed", "full_name": "P", "email": "p@example.org",
    "email_key": "p@example.org", "phone": "+4520123456", "country": "DK", "preferred_language": "en",
    "treatment_id": 1, "condition_id": 1, "details": "", "timeframe": "not-sure", "budget": "not-sure",
    "contact_preference": "email", **STAMPS,
}  # fmt: skip
COUNTED = ("provider", "provider_treatment", "provider_condition", "assignment")


def _rows() -> dict:
    """Two providers, what they offer, and a lead assigned to both: rows pointing at providers."""
    return {
        **TAXONOMY,
        "provider": [
            {"id": 1, "name": "Aarhus Spine", "name_key": "aarhus spine", **PROVIDER},
            {"id": 2, "name": "Odense Neuro", "name_key": "odense neuro", **PROVIDER},
        ],
        "provider_treatment": [
            {"provider_id": n, "treatment_id": 1, "evidence_status": "approved"} for n in (1, 2)
        ],
        "provider_condition": [{"provider_id": n, "condition_id": 1} for n in (1, 2)],
        "lead": [{"id": 1, **LEAD}],
        "assignment": [
            {"id": n, "provider_id": n, "rank": n, "status": "notified", **ASSIGNMENT} for n in (1, 2)
        ],
    }


def _provider(n: int, name: str, key: str) -> dict:
    return {"provider": [{"id": n, "name": name, "name_key": key, **PROVIDER}]}


def _refused(rows: dict) -> bool:
    """Whether the database refuses the rows; nothing is kept either way."""
    with db.engine.connect() as connection:
        try:
            insert_rows(connection, rows)
        except sa.exc.IntegrityError:
            return True
        finally:
            connection.rollback()
    return False


def _schema() -> dict:
    with db.engine.connect() as connection:
        inspector = sa.inspect(connection)
        return {
            "unique": {c["name"] for c in inspector.get_unique_constraints("provider")},
            "indexes": {i["name"]: i["unique"] for i in inspector.get_indexes("provider")},
            "counts": {
                t: connection.scalar(sa.select(sa.func.count()).select_from(sa.table(t))) for t in COUNTED
            },
        }


def test_the_case_sensitive_name_key_goes_and_the_providers_and_their_rows_stay(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0020p")
            with db.engine.begin() as connection:
                insert_rows(connection, _rows())
            before = _schema()
            flask_migrate.upgrade(revision="0021k")
            after = _schema()
            # The name as typed no longer has a key of its own (a row with a forged key shows it)...
            same_name_other_key = _refused(_provider(3, "Aarhus Spine", "forged"))
            # ...and the name in any case still refuses both spellings.
            same_key = [
                _refused(_provider(3, name, "aarhus spine")) for name in ("Aarhus Spine", "AARHUS SPINE")
            ]
            # Foreign keys still point at the providers (SQLite copied the table) and are enforced.
            dangling = _refused(
                {"assignment": [{"id": 3, "provider_id": 99, "rank": 3, "status": "notified", **ASSIGNMENT}]}
            )
            flask_migrate.downgrade(revision="0020p")
            down = _schema()
            same_name_other_key_down = _refused(_provider(3, "Aarhus Spine", "forged"))
            db.engine.dispose()
    assert "uq_provider_name" in before["unique"] and before["indexes"]["ix_provider_name_key"]
    assert "uq_provider_name" not in after["unique"] and after["indexes"]["ix_provider_name_key"]
    assert after["counts"] == before["counts"] == {t: 2 for t in COUNTED}
    assert same_name_other_key is False and same_key == [True, True] and dangling is True
    assert "uq_provider_name" in down["unique"] and down["indexes"]["ix_provider_name_key"]
    assert down["counts"] == before["counts"] and same_name_other_key_down is True


@pytest.mark.sqlite_only  # PostgreSQL enforces foreign keys through every migration
def test_on_sqlite_a_migration_that_would_leave_a_row_pointing_at_nothing_is_rolled_back(tmp_path):
    """Migrations run with SQLite's foreign keys unenforced (a table copy drops a table others point
    at); each one commits only if every key still holds, and enforcement is back afterwards."""
    app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'migrated.db'}")
    with app.app_context():
        flask_migrate.upgrade(revision="0020p")
        with db.engine.begin() as connection:
            insert_rows(connection, _rows())
        with db.engine.connect() as connection:
            # A row pointing at nothing, as only unenforced keys let one be written.
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("UPDATE assignment SET provider_id = 99 WHERE id = 2")
            connection.commit()
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
        # Through Alembic itself: `flask db upgrade` prints the same message and exits with 1.
        with pytest.raises(RuntimeError) as stopped:
            alembic.command.upgrade(app.extensions["migrate"].migrate.get_config(), "0021k")
        with db.engine.connect() as connection:
            version = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
            enforced = connection.scalar(sa.text("PRAGMA foreign_keys"))
        unique = _schema()["unique"]
        db.engine.dispose()
    assert "would leave rows pointing at nothing (1): assignment row 2 -> provider" in str(stopped.value)
    assert version == "0020p" and "uq_provider_name" in unique
    assert enforced == 1

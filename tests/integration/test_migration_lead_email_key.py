"""Migration 0015e: every lead gets its email key (ASCII addresses lower-cased by the database, the
others by Python a batch at a time), indexed in place of lower(email), on either database."""

import unicodedata

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from leads.models.lead import email_key
from tests.integration.test_migration_price_range import STAMPS, TAXONOMY, insert_rows
from tests.integration.test_migration_provider_stats import LEAD
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step; the backfill runs on both databases.
pytestmark = [pytest.mark.commits, pytest.mark.pg]

ADDRESSES = [
    "Mia.Jensen@Example.ORG",
    "ØRSTED@example.org",
    "øRSTED@example.org",
    unicodedata.normalize("NFD", "Åse@example.org"),  # Å as A and a combining ring
    "",  # an anonymised lead
]
# More than one batch (0015e's BATCH, 1000) of addresses beyond ASCII, between the others.
MANY = [f"BJØRN{n}@example.org" for n in range(1500)]


def _lead_rows(addresses: list[str]) -> dict:
    return {
        "lead": [
            {**LEAD, "id": n, "reference": f"Q-{n:06d}", "email": address, **STAMPS}
            for n, address in enumerate(addresses, start=1)
        ]
    }


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")  # insert_rows, at 0014p
def test_each_lead_gets_its_email_key_indexed_in_place_of_lower_email(database_url, tmp_path):
    addresses = ADDRESSES + MANY + ["LAST@example.org"]
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0014p")
            with db.engine.begin() as connection:
                insert_rows(connection, {**TAXONOMY, **_lead_rows(addresses)})
            flask_migrate.upgrade(revision="0015e")
            with db.engine.connect() as connection:
                keys = connection.scalars(sa.text("SELECT email_key FROM lead ORDER BY id")).all()
                indexes = _index_names(connection)
            flask_migrate.downgrade(revision="0014p")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("lead")}
                indexes_after_downgrade = _index_names(connection)
            db.engine.dispose()
    assert keys[:5] == [
        "mia.jensen@example.org",
        "ørsted@example.org",
        "ørsted@example.org",
        "åse@example.org",
        "",
    ]
    assert keys == [email_key(address) for address in addresses]
    assert "ix_lead_email_key" in indexes and "ix_lead_email_lower" not in indexes
    assert "email_key" not in columns
    assert (
        "ix_lead_email_lower" in indexes_after_downgrade
        and "ix_lead_email_key" not in indexes_after_downgrade
    )


def _index_names(connection) -> set[str]:
    """The lead table's indexes, by name (SQLAlchemy does not reflect SQLite's lower(email) one)."""
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'lead'"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = 'lead'"
    return set(connection.scalars(sa.text(query)))

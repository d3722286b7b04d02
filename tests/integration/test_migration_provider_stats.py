"""Migration 0009u: every provider's answer statistics are recomputed over its last 200 answered or
expired assignments, stored beside the new unanswered count, on either database."""

from datetime import UTC, datetime, timedelta

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from tests.integration.test_migration_price_range import PROVIDER, STAMPS, TAXONOMY, insert_rows
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step; the backfill runs on both databases.
pytestmark = [pytest.mark.commits, pytest.mark.pg]

NOW = datetime(2026, 11, 1, 10, tzinfo=UTC)
LEAD = {
    "status": "contacted", "full_name": "P", "email": "p@example.org", "phone": "+4520123456",
    "country": "DK", "preferred_language": "en", "treatment_id": 1, "condition_id": 1, "details": "",
    "timeframe": "not-sure", "budget": "not-sure", "contact_preference": "email", **STAMPS,
}  # fmt: skip


def _assignment(number: int, provider_id: int, status: str, settled: datetime) -> dict:
    answered = status != "expired"
    return {
        "id": number, "lead_id": number, "provider_id": provider_id, "rank": 1, "score": 1.0,
        "score_breakdown": {}, "status": status, "created_at": settled - timedelta(hours=2),
        "responded_at": settled if answered else None, "expired_at": None if answered else settled,
    }  # fmt: skip


def _rows(connection) -> None:
    """Provider 1: 20 expiries three years ago, then 210 answers (every third an acceptance), then
    one expiry last week. Provider 2: never asked."""
    history = [("expired", NOW - timedelta(days=1095 - n)) for n in range(20)]
    history += [("accepted" if n % 3 == 0 else "declined", NOW - timedelta(days=300 - n)) for n in range(210)]
    history.append(("expired", NOW - timedelta(days=7)))
    rows = {
        **TAXONOMY,
        "provider": [
            {"id": 1, "name": "Aarhus Spine", **PROVIDER, "response_count": 200, "accepted_count": 70},
            {"id": 2, "name": "Odense Neuro", **PROVIDER},
        ],
        "lead": [
            {"id": n, "reference": f"Q-{n:06d}", **LEAD, "email": f"p{n}@example.org"}
            for n in range(1, len(history) + 1)
        ],
        "assignment": [
            _assignment(n, 1, status, settled) for n, (status, settled) in enumerate(history, start=1)
        ],
    }  # fmt: skip
    insert_rows(connection, rows)


# Reflecting the lead table at 0008n: SQLite cannot describe its lower(email) index, which no row here needs.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
def test_provider_statistics_are_recomputed_over_the_last_200_answered_or_expired(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0008n")
            with db.engine.begin() as connection:
                _rows(connection)
            flask_migrate.upgrade(revision="0009u")
            query = (
                "SELECT id, response_count, accepted_count, unanswered_count, median_response_seconds "
                "FROM provider ORDER BY id"
            )
            with db.engine.connect() as connection:
                providers = [tuple(row) for row in connection.execute(sa.text(query))]
                indexes = _indexes(connection)
            flask_migrate.downgrade(revision="0008n")
            with db.engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("provider")}
                indexes_after_downgrade = _indexes(connection)
            db.engine.dispose()
    # The window: last week's expiry and the latest 199 answers (n = 11..209), of which every
    # third (n divisible by 3) was an acceptance: 66. The old expiries fall outside it.
    assert providers == [(1, 199, 66, 1, 2 * 3600), (2, 0, 0, 0, None)]
    assert "unanswered_count" not in columns
    assert indexes == {
        "ix_assignment_lead_id": ["lead_id"],
        "ix_assignment_provider_id_created_at": ["provider_id", "created_at"],
    }
    assert indexes_after_downgrade == {
        "ix_assignment_lead_id": ["lead_id"],
        "ix_assignment_provider_id": ["provider_id"],
    }


def _indexes(connection) -> dict[str, list[str]]:
    """The assignment table's indexes on provider or lead, with their columns."""
    found = sa.inspect(connection).get_indexes("assignment")
    return {
        i["name"]: i["column_names"]
        for i in found
        if i["name"].startswith(("ix_assignment_provider", "ix_assignment_lead"))
    }

"""Migration 0016r: a lead moved out of chosen or booked before such a move ended the patient's
choice gets the end state `end_choice` gives it now (quote choice_ended, assignment closed, a
system history entry), on either database; standing choices, ended ones and a patient's own
withdrawal are left as they are, no email is queued, and a second run changes nothing."""

from datetime import UTC, datetime, timedelta

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db
from leads.timeutil import UTCDateTime
from tests.integration.test_migration_price_range import PROVIDER, TAXONOMY, insert_rows
from tests.integration.test_migration_provider_stats import LEAD
from tests.integration.test_migration_render_context import scratch_database

# A second app on a database of its own, migrated step by step; the repair runs on both databases.
pytestmark = [pytest.mark.commits, pytest.mark.pg]

THEN = datetime(2026, 6, 1, 10, tzinfo=UTC)
CHOSEN_AT = THEN + timedelta(days=3)

# Lead: its status now, its quote's and assignment's, and its moves after the choice.
LEADS = {
    1: ("closed_lost", "chosen", "accepted", [("chosen", "closed_lost", "staff")]),
    2: ("new", "chosen", "accepted", [("booked", "closed_lost", "staff"), ("closed_lost", "new", "staff")]),
    3: ("chosen", "chosen", "accepted", []),
    4: ("booked", "chosen", "accepted", [("chosen", "booked", "provider")]),
    5: ("closed_lost", "choice_ended", "closed", [("chosen", "closed_lost", "staff")]),
    # The patient's own withdrawal does not end the choice, now as before.
    6: ("withdrawn", "chosen", "accepted", [("chosen", "withdrawn", "patient")]),
    # A coordinator's move to withdrawn does.
    7: ("withdrawn", "chosen", "accepted", [("booked", "withdrawn", "staff")]),
}


def _rows(connection) -> None:
    stamps = {"created_at": THEN, "updated_at": THEN}
    events = [
        {"lead_id": n, "kind": "status_changed", "actor_type": actor, "from_status": before,
         "to_status": after, "note": None, "created_at": CHOSEN_AT + timedelta(days=step)}
        for n, (_, _, _, moves) in LEADS.items()
        for step, (before, after, actor) in enumerate(moves, start=1)
    ]  # fmt: skip
    insert_rows(
        connection,
        {
            **TAXONOMY,
            "provider": [
                {"id": n, "name": f"Clinic {n}", **PROVIDER, "response_count": 1, "accepted_count": 1}
                for n in LEADS
            ],
            "lead": [
                {"id": n, "reference": f"Q-{n:06d}", **LEAD, "status": status, "email": f"p{n}@example.org"}
                for n, (status, _, _, _) in LEADS.items()
            ],
            "assignment": [
                {"id": n, "lead_id": n, "provider_id": n, "rank": 1, "score": 1.0, "score_breakdown": {},
                 "status": assignment, "created_at": THEN, "responded_at": THEN + timedelta(hours=2),
                 "updated_at": THEN}
                for n, (_, _, assignment, _) in LEADS.items()
            ],
            "quote": [
                {"id": n, "assignment_id": n, "lead_id": n, "status": quote, "revision": 1,
                 "decided_at": CHOSEN_AT, **stamps}
                for n, (_, quote, _, _) in LEADS.items()
            ],
            "lead_event": events,
        },
    )  # fmt: skip


QUOTE = sa.table(
    "quote", *(sa.column(name) for name in ("lead_id", "assignment_id", "status")),
    sa.column("decided_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()),
)  # fmt: skip
ASSIGNMENT = sa.table(
    "assignment", sa.column("id"), sa.column("status"), sa.column("updated_at", UTCDateTime())
)


FIGURES = "SELECT id, response_count, accepted_count FROM provider"


def _state(connection) -> dict:
    query = (
        sa.select(QUOTE.c.lead_id, QUOTE.c.status, QUOTE.c.decided_at, QUOTE.c.updated_at)
        .add_columns(ASSIGNMENT.c.status, ASSIGNMENT.c.updated_at)
        .join(ASSIGNMENT, ASSIGNMENT.c.id == QUOTE.c.assignment_id)
        .order_by(QUOTE.c.lead_id)
    )
    events = "SELECT lead_id, actor_type, actor_provider_id, note FROM lead_event WHERE kind = 'choice_ended'"
    return {
        "rows": {row[0]: tuple(row[1:]) for row in connection.execute(query)},
        "events": sorted(tuple(row) for row in connection.execute(sa.text(events))),
        "figures": connection.execute(sa.text(FIGURES)).all(),
        "emails": connection.scalar(sa.text("SELECT count(*) FROM email_message")),
    }


# Reflecting the lead table: SQLite cannot describe its lower(email) index, which no row here needs.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
def test_choices_left_standing_by_an_earlier_move_are_ended_once_and_others_are_left(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0013a")
            with db.engine.begin() as connection:
                _rows(connection)
            flask_migrate.upgrade(revision="0016r")
            with db.engine.connect() as connection:
                repaired = _state(connection)
            flask_migrate.downgrade(revision="0013a")
            flask_migrate.upgrade(revision="0016r")
            with db.engine.connect() as connection:
                again = _state(connection)
            db.engine.dispose()

    rows = repaired["rows"]
    for n in (1, 2, 7):
        quote, decided_at, quote_stamp, assignment, assignment_stamp = rows[n]
        assert (quote, assignment) == ("choice_ended", "closed")
        assert decided_at == CHOSEN_AT
        # Stamped, so the stats summaries recount the days these rows belong to.
        assert quote_stamp > THEN and assignment_stamp > THEN
    untouched = {n: (LEADS[n][1], LEADS[n][2]) for n in (3, 4, 5, 6)}
    assert {n: (rows[n][0], rows[n][3]) for n in untouched} == untouched
    assert all(rows[n][2] == THEN == rows[n][4] for n in untouched)
    note = (
        "The patient's choice of Clinic {} ended; its link no longer shows the lead: ended by the data "
        "repair of migration 0016r: the lead had left chosen or booked before such a move ended the choice."
    )
    assert repaired["events"] == [(n, "system", n, note.format(n)) for n in (1, 2, 7)]
    # Closed is still an acceptance: the clinics' figures stand, and nobody is emailed.
    assert sorted(tuple(row) for row in repaired["figures"]) == [(n, 1, 1) for n in LEADS]
    assert repaired["emails"] == 0
    assert again == repaired

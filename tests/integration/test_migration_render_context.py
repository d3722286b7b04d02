"""Migration 0008n: an email's render context that an earlier release cleared to JSON null
becomes SQL NULL, on either database; a context still waiting to render is left as it is."""

import secrets
from contextlib import contextmanager
from datetime import UTC, datetime

import flask_migrate
import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.extensions import db

# A second app on a database of its own, migrated step by step.
pytestmark = [pytest.mark.commits, pytest.mark.pg]  # the migration branches on the database

NOW = datetime(2026, 11, 1, 10, tzinfo=UTC)
WAITING = {"template": "patient_confirmation", "language": "da", "context": {"reference": "Q-AAAAAA"}}


@contextmanager
def scratch_database(database_url: str, tmp_path):
    """A new, empty database beside the run's own: a file on SQLite, a database on PostgreSQL."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"migration_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()


def _email(number: int, render_context: str | None) -> dict:
    return {
        "id": number, "idempotency_key": f"k{number}", "template": "patient_confirmation",
        "to_address": "p@example.org", "subject": "", "body_text": "", "body_html": "",
        "render_context": render_context, "message_id": f"<m{number}@example.org>",
        "status": "sent", "attempts": 1, "created_at": NOW,
    }  # fmt: skip


def test_json_null_render_contexts_become_sql_null_and_waiting_ones_stay(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(config.TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            flask_migrate.upgrade(revision="0007l")
            emails = sa.table(
                "email_message",
                *(sa.column(name) for name in _email(0, None) if name != "render_context"),
                sa.column("render_context", sa.JSON),  # as 0007e made it: None is JSON null
            )
            with db.engine.begin() as connection:
                # As an earlier release wrote them: JSON null, a context waiting to render, SQL NULL.
                for number, context in ((1, None), (2, WAITING), (3, sa.null())):
                    connection.execute(emails.insert().values(**_email(number, context)))
            is_null = "SELECT id FROM email_message WHERE render_context IS NULL ORDER BY id"
            with db.engine.connect() as connection:
                before = connection.scalars(sa.text(is_null)).all()
            flask_migrate.upgrade(revision="0008n")
            with db.engine.connect() as connection:
                after = connection.scalars(sa.text(is_null)).all()
                waiting = connection.scalar(sa.select(emails.c.render_context).where(emails.c.id == 2))
            db.engine.dispose()
    assert before == [3], "the JSON null of row 1 is not SQL NULL before the migration"
    assert after == [1, 3]
    assert waiting == WAITING

"""provider name key: each provider stores its name in any case (`provider_name_key`), under a
unique index, so two admins saving "Nordic Clinic" and "nordic clinic" at the same moment cannot
both succeed (the unique key on the name itself is case-sensitive)

Existing names that are the same in any case are not merged or renamed here: the migration stops
before changing anything and names them, and an admin renames all but one of each (or the
operator removes a stray copy) before it is run again.

Revision ID: 0014p
Revises: 0013a
Create Date: 2026-11-29 20:30:00

"""

import unicodedata

from alembic import op
import sqlalchemy as sa


revision = "0014p"
down_revision = "0013a"
branch_labels = None
depends_on = None

provider = sa.table(
    "provider",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("name_key", sa.String),
)


def name_key(name):
    """leads.models.catalog.provider_name_key when this was written."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


class SameNameInAnyCase(RuntimeError):
    """Providers whose names differ only in case or spacing; nothing was changed."""


def upgrade():
    bind = op.get_bind()
    rows = bind.execute(sa.select(provider.c.id, provider.c.name).order_by(provider.c.id)).all()
    by_key = {}
    for row in rows:
        by_key.setdefault(name_key(row.name), []).append(row)
    clashes = [same for same in by_key.values() if len(same) > 1]
    if clashes:
        groups = "; ".join(" and ".join(f"'{row.name}' (id {row.id})" for row in same) for same in clashes)
        raise SameNameInAnyCase(
            f"Migration 0014p stopped before changing anything: these providers have the same name "
            f"in any case: {groups}. Rename all but one of each in the provider directory, then "
            f"run the migration again."
        )
    # In place: SQLite adds a NOT NULL column only with a default, and copying the table to drop
    # it would mean dropping the table other tables' foreign keys point at. PostgreSQL drops it.
    op.add_column("provider", sa.Column("name_key", sa.String(length=600), nullable=False, server_default=""))
    for row in rows:
        bind.execute(provider.update().where(provider.c.id == row.id).values(name_key=name_key(row.name)))
    if bind.dialect.name == "postgresql":
        op.alter_column("provider", "name_key", server_default=None)
    op.create_index("ix_provider_name_key", "provider", ["name_key"], unique=True)


def downgrade():
    op.drop_index("ix_provider_name_key", table_name="provider")
    op.drop_column("provider", "name_key")

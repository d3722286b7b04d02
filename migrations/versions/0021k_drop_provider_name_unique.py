"""drop the provider name's case-sensitive unique key: since 0014p the unique index on the name in
any case (`ix_provider_name_key`) refuses every name it refused and more ("Nordic Clinic" and
"NORDIC CLINIC"), so `uq_provider_name`, kept from the first schema, only doubled each insert's
and each rename's work and made a second error for the same clash

Two providers with the same name have the same key, so the way down always finds the names unique.
On SQLite the table is copied without the constraint (batch mode); the copy drops the table that
other tables' foreign keys point at, which `env.py` allows by running migrations with foreign keys
unenforced on SQLite and checking them all before the commit.

Revision ID: 0021k
Revises: 0020p
Create Date: 2026-11-30 09:00:00

"""
from alembic import op


revision = '0021k'
down_revision = '0020p'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('provider', schema=None) as batch_op:
        batch_op.drop_constraint('uq_provider_name', type_='unique')


def downgrade():
    with op.batch_alter_table('provider', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_provider_name', ['name'])

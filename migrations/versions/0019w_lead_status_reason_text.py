"""lead status reason as text: a coordinator's note on a status change is also the lead's status
reason, and the form allows 2,000 characters, where the column held 500 (PostgreSQL refused a
longer note with an error page; SQLite does not enforce a VARCHAR's length, so nothing changes
there).

Revision ID: 0019w
Revises: 0018n
Create Date: 2026-11-29 21:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0019w'
down_revision = '0018n'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('lead', 'status_reason', type_=sa.Text(), existing_type=sa.String(500))


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        # A reason longer than 500 characters is cut to fit, as the column held before.
        op.execute('UPDATE lead SET status_reason = left(status_reason, 500) WHERE length(status_reason) > 500')
        op.alter_column('lead', 'status_reason', type_=sa.String(500), existing_type=sa.Text())

"""lead event note data: what a note the system writes says, and its values, without words, so
that a staff page words it in its reader's language (`leads.notes`); the note's English sentence
stays in `note`. Notes written before keep their English text and no data.

Revision ID: 0018n
Revises: 0017l
Create Date: 2026-11-29 21:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0018n'
down_revision = '0017l'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lead_event') as batch_op:
        batch_op.add_column(sa.Column('note_data', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('lead_event') as batch_op:
        batch_op.drop_column('note_data')

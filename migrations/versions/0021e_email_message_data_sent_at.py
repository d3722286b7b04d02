"""email message data_sent_at: a sender marks an email right before it sends DATA (from then on the
mail server may keep a copy) and clears the mark once the server's answer is recorded; a mark left
by an attempt that never heard the answer (its worker died, the connection dropped) tells the
delivery after it that the email may have arrived twice. Rows that exist get no mark: nothing tells
how far their attempts went.

Revision ID: 0021e
Revises: 0021r
Create Date: 2026-12-01 09:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = '0021e'
down_revision = '0021r'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_sent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('email_message', schema=None) as batch_op:
        batch_op.drop_column('data_sent_at')

"""email message last error data: why an email was not sent or not delivered, as a note
(`leads.notes`: the system's words around the mail server's answer, quoted as given), so that the
lead page words it in its reader's language; `last_error` keeps its English text. Emails written
before keep their text and no data, shown as stored.

Revision ID: 0021r
Revises: 0021s
Create Date: 2026-11-30 10:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = '0021r'
down_revision = '0021s'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_message') as batch_op:
        batch_op.add_column(sa.Column('last_error_data', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('email_message') as batch_op:
        batch_op.drop_column('last_error_data')

"""quote follow-up: renewal requests, the clinic's and the patient's reminders; the free-text
first price range of an acceptance moves into the lead's history

Revision ID: 0006q
Revises: 0005
Create Date: 2026-11-28 10:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006q'
down_revision = '0005'
branch_labels = None
depends_on = None

assignment = sa.table(
    'assignment',
    sa.column('id', sa.Integer),
    sa.column('lead_id', sa.Integer),
    sa.column('provider_id', sa.Integer),
    sa.column('price_range', sa.String),
    sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('responded_at', sa.DateTime(timezone=True)),
)
lead_event = sa.table(
    'lead_event',
    sa.column('lead_id', sa.Integer),
    sa.column('kind', sa.String),
    sa.column('actor_type', sa.String),
    sa.column('actor_provider_id', sa.Integer),
    sa.column('note', sa.Text),
    sa.column('created_at', sa.DateTime(timezone=True)),
)


def upgrade():
    with op.batch_alter_table('quote', schema=None) as batch_op:
        batch_op.add_column(sa.Column('renewal_requested_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quotes_reminded_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quote_reminded_at', sa.DateTime(timezone=True), nullable=True))

    # A price range typed on acceptance stays readable as an event in the lead's history (shown
    # on the lead page, exported to the patient, removed by erasure like every event note).
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(assignment).where(assignment.c.price_range.is_not(None), assignment.c.price_range != '')
    ).all()
    if rows:
        op.bulk_insert(lead_event, [
            {
                'lead_id': row.lead_id,
                'kind': 'first_price_range',
                'actor_type': 'provider',
                'actor_provider_id': row.provider_id,
                'note': f'First price range given on acceptance: {row.price_range}',
                'created_at': row.responded_at or row.created_at,
            }
            for row in rows
        ])
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_column('price_range')


def downgrade():
    # The price ranges stay in the history; the restored column starts empty.
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_range', sa.String(length=100), nullable=True))
        batch_op.drop_column('quote_reminded_at')
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_column('quotes_reminded_at')
    with op.batch_alter_table('quote', schema=None) as batch_op:
        batch_op.drop_column('renewal_requested_at')

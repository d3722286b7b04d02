"""quotes: a quote per assignment with every revision kept

Revision ID: 0005
Revises: 9daf2137dda0
Create Date: 2026-11-28 09:46:14.109444

"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '9daf2137dda0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quote',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('treatment_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_quote_assignment_id_assignment')),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_quote_lead_id_lead')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote')),
    sa.UniqueConstraint('assignment_id', name=op.f('uq_quote_assignment_id'))
    )
    with op.batch_alter_table('quote', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_lead_id'), ['lead_id'], unique=False)

    op.create_table('quote_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('quote_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('price_from', sa.Integer(), nullable=False),
    sa.Column('price_to', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('includes', sa.JSON(), nullable=False),
    sa.Column('earliest_start', sa.Date(), nullable=False),
    sa.Column('valid_days', sa.Integer(), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('needs_records', sa.Boolean(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['quote_id'], ['quote.id'], name=op.f('fk_quote_revision_quote_id_quote')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote_revision')),
    sa.UniqueConstraint('quote_id', 'number', name=op.f('uq_quote_revision_quote_id'))
    )
    with op.batch_alter_table('quote_revision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_revision_quote_id'), ['quote_id'], unique=False)



def downgrade():
    with op.batch_alter_table('quote_revision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_revision_quote_id'))

    op.drop_table('quote_revision')
    with op.batch_alter_table('quote', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_lead_id'))

    op.drop_table('quote')

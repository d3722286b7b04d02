"""reliability: the outbox sweep claims the rows it publishes (two sweeps never publish one row
twice); provider addresses the mail server refused for good, flagged to admins

Revision ID: 0006r
Revises: 0006p
Create Date: 2026-11-28 10:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006r'
down_revision = '0006p'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('address_bounce',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('answer', sa.String(length=1000), nullable=False),
    sa.Column('bounces', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['provider.id'], name=op.f('fk_address_bounce_provider_id_provider')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_address_bounce')),
    sa.UniqueConstraint('provider_id', 'address', name=op.f('uq_address_bounce_provider_id'))
    )
    with op.batch_alter_table('address_bounce', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_address_bounce_provider_id'), ['provider_id'], unique=False)

    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_claimed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('address_bounce', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_address_bounce_provider_id'))

    op.drop_table('address_bounce')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('sweep_claimed_at')

"""provider unanswered count: a provider's answer statistics over its last 200 answered or expired
assignments, stored on the provider, so routing no longer counts every expiry it ever had; and an
index of each provider's assignments by date for the week's count

Until now routing counted all of a provider's expired assignments on every routing (a scan that
grows with history) against its last 200 answers: after a few years the response rate weighed a
capped number of answers against every expiry. The statistics are recomputed here for every
provider over one window, as `responses.refresh_provider_stats` keeps them from now on.

Revision ID: 0009u
Revises: 0008n
Create Date: 2026-11-29 11:00:00

"""
import statistics

from alembic import op
import sqlalchemy as sa


revision = '0009u'
down_revision = '0008n'
branch_labels = None
depends_on = None

WINDOW = 200  # responses.STATS_WINDOW when this was written
ACCEPTANCES = ('accepted', 'not_chosen')

provider = sa.table(
    'provider',
    sa.column('id', sa.Integer),
    sa.column('response_count', sa.Integer),
    sa.column('accepted_count', sa.Integer),
    sa.column('unanswered_count', sa.Integer),
    sa.column('median_response_seconds', sa.Integer),
)
assignment = sa.table(
    'assignment',
    sa.column('id', sa.Integer),
    sa.column('provider_id', sa.Integer),
    sa.column('status', sa.String),
    sa.column('created_at', sa.DateTime),
    sa.column('responded_at', sa.DateTime),
    sa.column('expired_at', sa.DateTime),
)


def upgrade():
    with op.batch_alter_table('provider', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unanswered_count', sa.Integer(), server_default='0', nullable=False))
    # Routing counts the candidates' assignments of the week from this index alone; its leading
    # column serves the provider's foreign key, as the index it replaces did.
    op.create_index('ix_assignment_provider_id_created_at', 'assignment', ['provider_id', 'created_at'])
    op.drop_index('ix_assignment_provider_id', table_name='assignment')
    bind = op.get_bind()
    settled_at = sa.func.coalesce(assignment.c.responded_at, assignment.c.expired_at, assignment.c.created_at)
    for (provider_id,) in bind.execute(sa.select(provider.c.id)).all():
        rows = bind.execute(
            sa.select(assignment.c.status, assignment.c.created_at, assignment.c.responded_at)
            .where(
                assignment.c.provider_id == provider_id,
                sa.or_(assignment.c.responded_at.is_not(None), assignment.c.status == 'expired'),
            )
            .order_by(settled_at.desc(), assignment.c.id.desc())
            .limit(WINDOW)
        ).all()
        answered = [row for row in rows if row.status != 'expired']
        durations = [(row.responded_at - row.created_at).total_seconds() for row in answered]
        bind.execute(
            provider.update()
            .where(provider.c.id == provider_id)
            .values(
                response_count=len(answered),
                accepted_count=sum(1 for row in answered if row.status in ACCEPTANCES),
                unanswered_count=len(rows) - len(answered),
                median_response_seconds=int(statistics.median(durations)) if durations else None,
            )
        )


def downgrade():
    # In place (SQLite 3.35 and later drop a plain column): a batch copy of the table would have
    # to drop the table other tables' foreign keys point at.
    op.drop_column('provider', 'unanswered_count')
    op.create_index('ix_assignment_provider_id', 'assignment', ['provider_id'])
    op.drop_index('ix_assignment_provider_id_created_at', table_name='assignment')

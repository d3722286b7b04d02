"""end choices left standing: a lead moved out of chosen or booked before such a move ended the
patient's choice still holds a chosen quote and an accepted assignment, so the patient cannot
choose again and the clinic chosen then still sees the patient; each such choice is ended here as
`quotes.service.end_choice` ends it now

What the repair does, per choice: the quote becomes choice_ended (its decided_at kept), the
assignment, if still accepted, becomes closed (an acceptance still in the clinic's statistics, so
the provider row keeps its figures), both rows' updated_at are stamped (the stats summaries see
the change, as after the ORM's update), and the lead's history gets a system "choice_ended" entry
saying the repair ended it. No email is queued: the clinic is not told, as for any closed lead,
and a provider email about the closed assignment still waiting is refused when a worker claims it.

A choice is ended only where the current code would have ended it: the lead's history shows a move
out of chosen or booked other than the patient's own withdrawal (a coordinator's move, to
withdrawn too, an erasure or a retention close all end the choice now; the patient's withdrawal
does not). Rows already
repaired no longer hold a chosen quote, so running it again changes nothing. The downgrade leaves
the data as it is: the old state was the fault.

Revision ID: 0016r
Revises: 0015e
Create Date: 2026-11-29 21:00:00

"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa


revision = '0016r'
down_revision = '0015e'
branch_labels = None
depends_on = None

CHOICE_MADE = ('chosen', 'booked')
WHY = (
    "ended by the data repair of migration 0016r: the lead had left chosen or booked before such "
    "a move ended the choice."
)

lead = sa.table('lead', sa.column('id', sa.Integer), sa.column('status', sa.String))
provider = sa.table('provider', sa.column('id', sa.Integer), sa.column('name', sa.String))
assignment = sa.table(
    'assignment',
    sa.column('id', sa.Integer),
    sa.column('provider_id', sa.Integer),
    sa.column('status', sa.String),
    sa.column('updated_at', sa.DateTime(timezone=True)),
)
quote = sa.table(
    'quote',
    sa.column('id', sa.Integer),
    sa.column('lead_id', sa.Integer),
    sa.column('assignment_id', sa.Integer),
    sa.column('status', sa.String),
    sa.column('updated_at', sa.DateTime(timezone=True)),
)
lead_event = sa.table(
    'lead_event',
    sa.column('lead_id', sa.Integer),
    sa.column('kind', sa.String),
    sa.column('actor_type', sa.String),
    sa.column('actor_user_id', sa.Integer),
    sa.column('actor_provider_id', sa.Integer),
    sa.column('from_status', sa.String),
    sa.column('to_status', sa.String),
    sa.column('note', sa.Text),
    sa.column('created_at', sa.DateTime(timezone=True)),
)


def upgrade():
    bind = op.get_bind()
    moved_out_by_a_move = sa.exists().where(
        lead_event.c.lead_id == quote.c.lead_id,
        lead_event.c.kind == 'status_changed',
        lead_event.c.from_status.in_(CHOICE_MADE),
        lead_event.c.to_status.not_in(CHOICE_MADE),
        sa.not_(sa.and_(lead_event.c.to_status == 'withdrawn', lead_event.c.actor_type == 'patient')),
    )
    standing = bind.execute(
        sa.select(
            quote.c.id,
            quote.c.lead_id,
            assignment.c.id.label('assignment_id'),
            provider.c.id.label('provider_id'),
            provider.c.name,
        )
        .join(assignment, assignment.c.id == quote.c.assignment_id)
        .join(provider, provider.c.id == assignment.c.provider_id)
        .join(lead, lead.c.id == quote.c.lead_id)
        .where(quote.c.status == 'chosen', lead.c.status.not_in(CHOICE_MADE), moved_out_by_a_move)
        .order_by(quote.c.id)
    ).all()
    now = datetime.now(UTC)
    for row in standing:
        bind.execute(
            quote.update()
            .where(quote.c.id == row.id, quote.c.status == 'chosen')
            .values(status='choice_ended', updated_at=now)
        )
        bind.execute(
            assignment.update()
            .where(assignment.c.id == row.assignment_id, assignment.c.status == 'accepted')
            .values(status='closed', updated_at=now)
        )
        bind.execute(
            lead_event.insert().values(
                lead_id=row.lead_id,
                kind='choice_ended',
                actor_type='system',
                actor_provider_id=row.provider_id,
                note=f"The patient's choice of {row.name} ended; its link no longer shows the lead: {WHY}",
                created_at=now,
            )
        )


def downgrade():
    pass

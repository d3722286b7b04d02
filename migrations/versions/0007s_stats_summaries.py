"""stats summaries: one row of figures per UTC day, the change stamps that tell which days to
compute again (assignment.updated_at; indexes on lead.updated_at and quote.updated_at), and a
partial index for the queue's erasure count

Revision ID: 0007s
Revises: 0007e
Create Date: 2026-11-29 09:00:00

"""

from alembic import op
import sqlalchemy as sa


revision = "0007s"
down_revision = "0007e"
branch_labels = None
depends_on = None

ERASURE_PENDING = "erasure_requested_at IS NOT NULL AND anonymised_at IS NULL"


def upgrade():
    op.create_table(
        "stats_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("counts_changes_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stats_day")),
    )
    # Nullable: existing rows keep no stamp (a first summary reads them all anyway), and adding
    # the column writes no row of a large table.
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_assignment_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.create_index("ix_lead_updated_at", ["updated_at"], unique=False)
        batch_op.create_index(
            "ix_lead_erasure_pending",
            ["erasure_requested_at"],
            unique=False,
            postgresql_where=sa.text(ERASURE_PENDING),
            sqlite_where=sa.text(ERASURE_PENDING),
        )

    with op.batch_alter_table("quote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quote_updated_at"), ["updated_at"], unique=False)


def downgrade():
    with op.batch_alter_table("quote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quote_updated_at"))

    # Plain drops: a batch would reflect the lead table, whose expression index (lower(email))
    # SQLite's reflection cannot read; dropping an index needs no table copy on either database.
    op.drop_index("ix_lead_erasure_pending", table_name="lead")
    op.drop_index("ix_lead_updated_at", table_name="lead")

    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignment_updated_at"))
        batch_op.drop_column("updated_at")

    op.drop_table("stats_day")

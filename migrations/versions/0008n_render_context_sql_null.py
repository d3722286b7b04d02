"""an email's cleared render context is SQL NULL: rows an earlier release rendered or erased
hold JSON null there, which `IS NULL` does not find

Revision ID: 0008n
Revises: 0007l
Create Date: 2026-11-29 06:00:00

"""
from alembic import op


revision = '0008n'
down_revision = '0007l'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        null = "json_typeof(render_context) = 'null'"
    else:  # SQLite keeps JSON as its text
        null = "render_context = 'null'"
    op.execute(f"UPDATE email_message SET render_context = NULL WHERE {null}")


def downgrade():
    pass  # JSON null and SQL NULL mean the same to every release: nothing to undo

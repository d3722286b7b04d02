"""lead email key: each lead stores its email address in any case (`email_key`, computed in
Python), indexed, in place of the index of lower(email): SQLite's lower() (and PostgreSQL's under
the C locale) changes A to Z only, so ØRSTED@ and øRSTED@ were two patients to the duplicate
check, the search, withdrawal, erasure and the patient's own page

Built for a million leads: one UPDATE lower-cases the addresses that are plain ASCII (nearly all)
in the database, where its lower() and Python's agree; only the others are read and keyed in
Python, a batch at a time. The index is built once, after the keys are in.

Revision ID: 0015e
Revises: 0014p
Create Date: 2026-11-29 21:00:00

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


revision = '0015e'
down_revision = '0014p'
branch_labels = None
depends_on = None

BATCH = 1000

lead = sa.table(
    'lead',
    sa.column('id', sa.Integer),
    sa.column('email', sa.String),
    sa.column('email_key', sa.String),
)


def email_key(address):
    """leads.models.lead.email_key when this was written."""
    return unicodedata.normalize("NFC", address).lower()


def upgrade():
    bind = op.get_bind()
    postgresql = bind.dialect.name == 'postgresql'
    # In place: SQLite adds a NOT NULL column only with a default, and copying the table to drop
    # it would mean dropping the table other tables' foreign keys point at. PostgreSQL drops it.
    op.add_column('lead', sa.Column('email_key', sa.String(length=508), nullable=False, server_default=''))
    if postgresql:
        # As many bytes as characters: ASCII. Under the C collation lower() changes A to Z only,
        # whatever the database's locale (a Turkish one lower-cases I to a dotless ı).
        plain = sa.func.octet_length(lead.c.email) == sa.func.char_length(lead.c.email)
        lowered = sa.func.lower(lead.c.email.collate('C'))
    else:
        plain = sa.func.length(sa.cast(lead.c.email, sa.LargeBinary)) == sa.func.length(lead.c.email)
        lowered = sa.func.lower(lead.c.email)
    bind.execute(lead.update().where(plain).values(email_key=lowered))
    after = 0
    while True:
        rows = bind.execute(
            sa.select(lead.c.id, lead.c.email).where(lead.c.id > after, ~plain).order_by(lead.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            lead.update().where(lead.c.id == sa.bindparam('lead_id')).values(email_key=sa.bindparam('key')),
            [{'lead_id': row.id, 'key': email_key(row.email)} for row in rows],
        )
        after = rows[-1].id
    if postgresql:
        op.alter_column('lead', 'email_key', server_default=None)
    op.create_index('ix_lead_email_key', 'lead', ['email_key'])
    op.drop_index('ix_lead_email_lower', table_name='lead')


def downgrade():
    op.create_index('ix_lead_email_lower', 'lead', [sa.text('lower(email)')])
    op.drop_index('ix_lead_email_key', table_name='lead')
    op.drop_column('lead', 'email_key')

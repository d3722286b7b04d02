"""Outgoing email and the transactional outbox of tasks to publish."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from leads.extensions import db
from leads.timeutil import utcnow


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by one worker; reclaimed if that worker dies
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # never sent: no longer to be shared, the clinic's request ended, or erased


class EmailMessage(db.Model):
    __table_args__ = (sa.Index("ix_email_message_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    template: Mapped[str] = mapped_column(sa.String(100))
    to_address: Mapped[str] = mapped_column(sa.String(254))
    reply_to: Mapped[str | None] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str] = mapped_column(sa.Text)
    # Queued to be rendered by the worker that sends it ({"template", "language", "context"}):
    # subject and bodies stay empty until then (see leads.messaging.email.render_pending).
    # None is stored as SQL NULL, not JSON null (migration 0008n turned earlier JSON nulls into it).
    render_context: Mapped[dict | None] = mapped_column(sa.JSON(none_as_null=True))
    message_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lead.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default=EmailStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    # Why it was not sent or not delivered: the mail server's answer, or the system's English (a
    # bounce's starts with the server's code: `hard_bounced`). `last_error_data` says it as a note
    # (`leads.notes`: the system's words around the answer, quoted as given), worded in the reader's
    # language on the lead page; rows written before it (migration 0021r) show `last_error` as stored.
    # Set by a sender right before it sends DATA (from then on the server may keep a copy), and
    # cleared once an answer is recorded; still set when an attempt never heard the server's
    # answer (its worker died, the connection dropped), so the delivery after it may be a second copy.
    data_sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    last_error_data: Mapped[dict | None] = mapped_column(sa.JSON(none_as_null=True))
    sent_at: Mapped[datetime | None]
    # A provider notification refused for good, once its bounce was handled (`handle_bounces`).
    bounce_handled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(200))
    payload: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    # Set by the sweep that took the row to publish it; another sweep leaves it alone meanwhile.
    sweep_claimed_at: Mapped[datetime | None]

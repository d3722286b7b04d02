"""Staff accounts and the log of who looked at which lead."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column

from leads.extensions import db
from leads.timeutil import utcnow


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"


class AccessAction(StrEnum):
    VIEW = "view"  # a lead page was shown
    EXPORT = "export"  # the queue's CSV export
    PATIENT_EXPORT = "patient_export"  # everything held about one patient
    ERASURE = "erasure"
    REFUSED = "refused"  # a signed-in user asked for a page their role does not allow


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20), default=Role.COORDINATOR.value)
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class AccessLog(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # None: done from the command line by the operator.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lead.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(20))  # an AccessAction
    detail: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ErasureRecord(db.Model):
    """Proof that a patient's data was erased: when, by whom, which references. No personal data."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # None: from the command line; the door says which.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    door: Mapped[str] = mapped_column(sa.String(20))  # command_line, staff_page, retention
    references: Mapped[list] = mapped_column(sa.JSON, default=list)

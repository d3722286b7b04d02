"""Staff accounts and the log of who looked at which lead."""

import json
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
    # The queue was shown or searched (never the search term); with a lead: a search listed it.
    QUEUE = "queue"
    EXPORT = "export"  # the queue's CSV export; with a lead: the export held it
    PATIENT_EXPORT = "patient_export"  # everything held about one patient
    ERASURE = "erasure"
    REFUSED = "refused"  # a signed-in user asked for a page their role does not allow


# Where the team works; a user can choose another zone in their account settings.
DEFAULT_TIME_ZONE = "Europe/Copenhagen"


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20), default=Role.COORDINATOR.value)
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Part of the id in every session cookie: bumping it signs the user out everywhere.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # The IANA zone staff pages show this user's dates and times in.
    time_zone: Mapped[str] = mapped_column(
        sa.String(64), default=DEFAULT_TIME_ZONE, server_default=DEFAULT_TIME_ZONE
    )

    # The language staff pages are shown in for this user (leads.i18n.STAFF_LANGUAGES).
    language: Mapped[str] = mapped_column(sa.String(8), default="en", server_default="en")

    # Set when an admin or the operator chose the password (a new account, a reset): every staff
    # page sends the user to change it until they choose their own (leads.auth.guards).
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def end_sessions(self) -> None:
        """Every session signed in so far stops working at its next request."""
        self.session_version = (self.session_version or 0) + 1

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class LoginThrottle(db.Model):
    """Failed sign-ins for one account from one client address (see leads.auth.throttle)."""

    __table_args__ = (sa.UniqueConstraint("account", "client"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(sa.String(254))  # the address typed, known account or not
    client: Mapped[str] = mapped_column(sa.String(64))
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None]
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LoginCeiling(db.Model):
    """Failed sign-ins for one account, from browsers it has not signed in on, from every client
    address together, in one window of time (see leads.auth.ceiling)."""

    __table_args__ = (sa.UniqueConstraint("account", "window_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(sa.String(254))  # the address typed, known account or not
    window_start: Mapped[datetime] = mapped_column(index=True)
    failures: Mapped[int] = mapped_column(default=0)
    # When the admins were told that the window's ceiling was reached (once per window).
    notified_at: Mapped[datetime | None]


class LoginDeviceLock(db.Model):
    """Failed sign-ins made with one device cookie, from every client address together, in one
    window of time (see leads.auth.device_lock). The cookie is named by a hash of its nonce alone:
    no account, no address."""

    __table_args__ = (sa.UniqueConstraint("device", "window_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of the cookie's nonce, in hex
    window_start: Mapped[datetime] = mapped_column(index=True)
    failures: Mapped[int] = mapped_column(default=0)


DETAIL_LENGTH = 500  # AccessLog.detail


def access_detail(what: str, **values: str | int | bool) -> str:
    """An access-log detail as it is stored: what it says and its values as compact JSON, no
    words, so that the log's page says it in its reader's language
    (`leads.staff.access_log.describe`). Too long for the column, the longest text value (a filter
    summary, a path) is cut until it fits: the detail stays whole JSON."""
    values = dict(values)
    while True:
        text = json.dumps({"what": what, **values}, ensure_ascii=False, separators=(",", ":"))
        over = len(text) - DETAIL_LENGTH
        if over <= 0:
            return text
        longest = max((k for k, v in values.items() if isinstance(v, str)), key=lambda k: len(values[k]))
        if not values[longest]:
            raise ValueError(f"an access-log detail of {what!r} cannot fit in {DETAIL_LENGTH} characters")
        # A character takes at most six in JSON (\u0001): cutting a sixth of the excess never cuts
        # more than needed.
        values[longest] = values[longest][: -max(over // 6, 1)]


class AccessLog(db.Model):
    __table_args__ = (
        # The log's page reads one staff member's, one lead's or one kind's newest entries a page
        # at a time: each index hands them over in id order (and the first two serve the keys).
        sa.Index("ix_access_log_user_id_id", "user_id", "id"),
        sa.Index("ix_access_log_lead_id_id", "lead_id", "id"),
        sa.Index("ix_access_log_action_id", "action", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # None: done from the command line by the operator, or by the service itself (an erasure
    # carried out at its deadline, whose detail says so: leads.staff.access_log.who).
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lead.id"))
    action: Mapped[str] = mapped_column(sa.String(20))  # an AccessAction
    # Written by `access_detail`; a row written before it holds English text, shown as it is.
    detail: Mapped[str | None] = mapped_column(sa.String(DETAIL_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ErasureRecord(db.Model):
    """Proof that a patient's data was erased: when, by whom, which references. No personal data."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # None: from the command line or by the service itself; the door says which.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    # command_line, staff_page, retention, or deadline (a patient's request carried out when due)
    door: Mapped[str] = mapped_column(sa.String(20))
    references: Mapped[list] = mapped_column(sa.JSON, default=list)

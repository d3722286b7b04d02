"""The record of which staff member viewed the queue, viewed, exported or erased which lead,
and when; the operator's command-line exports and erasures, the erasures the service carries out
at their deadline, and refused attempts, too."""

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from leads.extensions import db
from leads.models import AccessAction, AccessLog, Lead, User
from leads.patients.privacy import AT_DEADLINE_DETAIL

VIEW, EXPORT, QUEUE = AccessAction.VIEW, AccessAction.EXPORT, AccessAction.QUEUE
ACTION_LABELS = {
    AccessAction.VIEW: _l("Viewed"),
    AccessAction.QUEUE: _l("Viewed the queue"),
    AccessAction.EXPORT: _l("Exported the queue"),
    AccessAction.PATIENT_EXPORT: _l("Exported the patient's data"),
    AccessAction.ERASURE: _l("Erased the patient's data"),
    AccessAction.REFUSED: _l("Refused"),
}

# An entry with no staff member was written by the operator's command line, or by the service
# itself: an erasure carried out at its deadline says so in its detail.
WITHOUT_STAFF = {AT_DEADLINE_DETAIL: _l("System")}
COMMAND_LINE_LABEL = _l("Command line (operator)")


def who(entry: AccessLog, email: str | None) -> str:
    """Who the entry names, in the reader's words: the staff member, the system or the operator."""
    return email or str(WITHOUT_STAFF.get(entry.detail, COMMAND_LINE_LABEL))


def record_view(user_id: int, lead_id: int, detail: str | None = None) -> AccessLog:
    """One row per lead shown; `detail` says where, when not on its own page."""
    entry = AccessLog(user_id=user_id, lead_id=lead_id, action=VIEW, detail=detail)
    db.session.add(entry)
    return entry


def record_export(user_id: int, *, rows: int, filters: str, with_details: bool) -> AccessLog:
    """One row per export: how many leads, which filters, whether free text went out."""
    detail = (
        f"{rows} lead(s); filters: {filters or 'none'}; free-text details: {'yes' if with_details else 'no'}"
    )
    entry = AccessLog(user_id=user_id, lead_id=None, action=EXPORT, detail=detail[:500])
    db.session.add(entry)
    return entry


def record_queue_view(user_id: int, *, filters: str) -> AccessLog:
    """One row per queue page shown: which filters, a search only as "(search)", never its term."""
    entry = AccessLog(
        user_id=user_id, lead_id=None, action=QUEUE, detail=f"filters: {filters or 'none'}"[:500]
    )
    db.session.add(entry)
    return entry


@dataclass
class AccessLogPage:
    rows: list[tuple[AccessLog, str, str | None]]  # entry, staff email, lead reference
    next_before: int | None


def recent(
    *, user_id: int | None = None, lead_id: int | None = None, before: int | None = None, limit: int = 100
) -> AccessLogPage:
    """Newest entries first, `limit` at a time (keyset on id)."""
    query = (
        sa.select(AccessLog, User.email, Lead.reference)
        .outerjoin(User, User.id == AccessLog.user_id)
        .outerjoin(Lead, Lead.id == AccessLog.lead_id)
    )
    if user_id is not None:
        query = query.where(AccessLog.user_id == user_id)
    if lead_id is not None:
        query = query.where(AccessLog.lead_id == lead_id)
    if before is not None:
        query = query.where(AccessLog.id < before)
    rows = db.session.execute(query.order_by(AccessLog.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = [tuple(r) for r in rows[:limit]]
    return AccessLogPage(rows=rows, next_before=rows[-1][0].id if more else None)

"""The record of which staff member viewed or searched the queue, viewed, exported or erased
which lead, and when (a search and an export name each lead they showed, never the term); the
operator's command-line exports and erasures, the erasures the service carries out at their
deadline, and refused attempts, too.

Each row's detail is stored without words (`access_detail`: what it says and its values, such as
the filters in their URL form) and said in the reader's language when shown (`describe`); a row
written before that holds English text, shown as it is."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from leads.extensions import db
from leads.models import AccessAction, AccessLog, Lead, User, access_detail
from leads.patients.privacy import AT_DEADLINE_DETAIL, COMMAND_LINE, DEADLINE, STAFF_PAGE
from leads.timeutil import utcnow

VIEW, EXPORT, QUEUE = AccessAction.VIEW, AccessAction.EXPORT, AccessAction.QUEUE
# Rows per INSERT when one action touches many leads (five parameters a row: well inside the
# limits of SQLite, 32,766, and PostgreSQL, 65,535).
BATCH = 1000
ACTION_LABELS = {
    AccessAction.VIEW: _l("Viewed"),
    AccessAction.QUEUE: _l("Viewed the queue"),
    AccessAction.EXPORT: _l("Exported the queue"),
    AccessAction.PATIENT_EXPORT: _l("Exported the patient's data"),
    AccessAction.ERASURE: _l("Erased the patient's data"),
    AccessAction.REFUSED: _l("Refused"),
}

# An entry with no staff member was written by the operator's command line, or by the service
# itself: an erasure carried out at its deadline says so in its detail (in English before details
# were stored without words).
BY_THE_SERVICE = (AT_DEADLINE_DETAIL, "automatic, at the erasure deadline")


def who(entry: AccessLog, email: str | None) -> str:
    """Who the entry names, in the reader's words: the staff member, the system or the operator."""
    if email:
        return email
    return _("System") if entry.detail in BY_THE_SERVICE else _("Command line (operator)")


# The door a patient export or an erasure came through (`leads.patients.privacy._door`, `AT_DEADLINE_DETAIL`).
DOORS = {
    STAFF_PAGE: _l("From a staff page"),
    COMMAND_LINE: _l("From the command line"),
    DEADLINE: _l("Automatically, at the erasure deadline"),
}


def _filters(values: dict) -> list[str]:
    """The queue filters a detail names (as the queue's URL names them, never a search term)."""
    filters = values.get("filters")
    words = [_("Filters: %(filters)s", filters=filters) if filters else _("No filters")]
    if values.get("search"):
        words.append(_("With a search (its term is not kept)"))
    return words


def _free_text(values: dict) -> str:
    return _("Free-text details included") if values.get("free_text") else _("Without free-text details")


def _words(what: str, values: dict) -> list[str] | None:
    """What a stored detail says, in the reader's words; None for one this code does not know."""
    if what == "queue":
        return _filters(values)
    if what == "search_listed":
        return [_("Listed by a search (its term is not kept)"), *_filters(values)]
    if what == "export":
        return [_("Leads: %(count)d", count=values.get("rows", 0)), *_filters(values), _free_text(values)]
    if what == "exported_lead":
        return [_("In a CSV export"), *_filters(values), _free_text(values)]
    if what == "door" and values.get("door") in DOORS:
        return [str(DOORS[values["door"]])]
    if what == "listed_for_erasure":
        return [_("Listed for erasure")]
    if what == "listed_for_export":
        return [_("Listed for export")]
    if what == "refused":
        return [_("Asked for %(path)s", path=values.get("path", ""))]
    return None


def describe(detail: str | None) -> str:
    """An entry's detail in the reader's language; one written before details were stored
    without words (or one this code does not know) as it is."""
    if not detail or not detail.startswith("{"):
        return detail or ""
    try:
        values = json.loads(detail)
    except ValueError:
        return detail
    words = _words(values.get("what"), values) if isinstance(values, dict) else None
    return "; ".join(words) if words else detail


def record_view(user_id: int, lead_id: int, detail: str | None = None) -> AccessLog:
    """One row per lead shown; `detail` says where, when not on its own page."""
    entry = AccessLog(user_id=user_id, lead_id=lead_id, action=VIEW, detail=detail)
    db.session.add(entry)
    return entry


def record_export(user_id: int, *, rows: int, filters: str, searched: bool, with_details: bool) -> AccessLog:
    """One row per export: how many leads, which filters (`filters`: the others than a search,
    which is only said to be one), whether free text went out. Each lead the export then holds
    gets a row of its own (`ExportedLeads`), as it goes out."""
    detail = access_detail("export", rows=rows, filters=filters, search=searched, free_text=with_details)
    entry = AccessLog(user_id=user_id, lead_id=None, action=EXPORT, detail=detail, created_at=utcnow())
    db.session.add(entry)
    return entry


def record_queue_view(
    user_id: int, *, filters: str, listed: Sequence[int] = (), searched: bool = False
) -> None:
    """One row per queue page shown: which filters (`filters`: the others than a search, which is
    only said to be one, never its term). A page a search found also writes a row for each lead it
    lists (`listed`, their ids)."""
    now = utcnow()
    detail = access_detail("queue", filters=filters, search=searched)
    db.session.add(AccessLog(user_id=user_id, lead_id=None, action=QUEUE, detail=detail, created_at=now))
    if searched and listed:
        db.session.flush()  # the page's row first: on the log, newest first, its leads' rows lead to it
        listed_detail = access_detail("search_listed", filters=filters)
        record_leads(user_id, listed, action=QUEUE, detail=listed_detail, at=now)


@dataclass(frozen=True)
class ExportedLeads:
    """The rows of one export's leads: what the export's summary row says of each of them."""

    user_id: int
    filters: str
    searched: bool
    with_details: bool
    at: datetime

    def record(self, lead_ids: Sequence[int]) -> None:
        detail = access_detail(
            "exported_lead", filters=self.filters, search=self.searched, free_text=self.with_details
        )
        record_leads(self.user_id, lead_ids, action=EXPORT, detail=detail, at=self.at)


def record_leads(user_id: int, lead_ids: Sequence[int], *, action: str, detail: str, at: datetime) -> None:
    """One row for each of `lead_ids`, written BATCH at a time with one multi-row INSERT each:
    an export of 100,000 leads costs a hundred statements, not 100,000 round trips."""
    for start in range(0, len(lead_ids), BATCH):
        rows = [
            {
                "user_id": user_id,
                "lead_id": lead_id,
                "action": action,
                "detail": detail,
                "created_at": at,
            }
            for lead_id in lead_ids[start : start + BATCH]
        ]
        db.session.execute(sa.insert(AccessLog).values(rows))


@dataclass
class AccessLogPage:
    rows: list[tuple[AccessLog, str, str | None]]  # entry, staff email, lead reference
    next_before: int | None


def recent(
    *,
    user_id: int | None = None,
    lead_id: int | None = None,
    action: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> AccessLogPage:
    """Newest entries first, `limit` at a time (keyset on id); each filter has an index that
    reads its entries in that order (migration 0013a)."""
    query = (
        sa.select(AccessLog, User.email, Lead.reference)
        .outerjoin(User, User.id == AccessLog.user_id)
        .outerjoin(Lead, Lead.id == AccessLog.lead_id)
    )
    if user_id is not None:
        query = query.where(AccessLog.user_id == user_id)
    if lead_id is not None:
        query = query.where(AccessLog.lead_id == lead_id)
    if action:
        query = query.where(AccessLog.action == action)
    if before is not None:
        query = query.where(AccessLog.id < before)
    rows = db.session.execute(query.order_by(AccessLog.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = [tuple(r) for r in rows[:limit]]
    return AccessLogPage(rows=rows, next_before=rows[-1][0].id if more else None)

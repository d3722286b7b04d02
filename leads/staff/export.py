"""CSV export of the filtered queue: counted and written to the access log before a byte goes
out, then streamed in queue order. Free-text medical details only when asked for."""

import csv
import io
from collections.abc import Iterator
from functools import cache

import sqlalchemy as sa
from flask_babel import gettext as _

from leads.extensions import db
from leads.models import Condition, Lead, Treatment, User
from leads.staff import access_log, queue
from leads.timeutil import utcnow

EXPORT_COLUMNS = (
    "reference", "received_at", "status", "full_name", "email", "phone", "country", "preferred_language",
    "treatment", "condition", "timeframe", "budget", "contact_preference", "utm_source", "utm_medium",
    "utm_campaign", "assigned_to", "sla_due_at", "duplicate_of",
)  # fmt: skip
DETAIL_COLUMNS = ("details", "diagnosis_date", "injury_level")
# Cells starting with these are formulas to a spreadsheet; a leading apostrophe defuses them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportTooLarge(ValueError):
    """More leads match than one export may hold."""


def csv_cell(value) -> str:
    """The value as a CSV cell a spreadsheet shows as text (a phone number such as +45… stays)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not (text.startswith("+") and text[1:].isdigit()):
        return "'" + text
    return text


def record_export(
    filters: queue.QueueFilters,
    *,
    user_id: int,
    include_details: bool,
    summary: str,
    searched: bool,
    limit: int,
) -> access_log.ExportedLeads:
    """Count the leads and log the export (the caller commits); ExportTooLarge past `limit`.
    What it returns logs each exported lead as `csv_chunks` writes it."""
    rows = queue.bounded_count(queue.filter_conditions(filters, utcnow()), ceiling=limit + 1)
    if rows > limit:
        raise ExportTooLarge(
            _("This list has more than %(limit)s leads. Narrow the filters to export it.", limit=f"{limit:,}")
        )
    entry = access_log.record_export(
        user_id, rows=rows, filters=summary, searched=searched, with_details=include_details
    )
    return access_log.ExportedLeads(user_id, summary, searched, include_details, entry.created_at)


def _row(lead: Lead, include_details: bool, names: dict, reference) -> list[str]:
    row = [
        lead.reference, lead.created_at.isoformat(), lead.status, lead.full_name, lead.email, lead.phone,
        lead.country, lead.preferred_language, names["treatment"].get(lead.treatment_id, ""),
        names["condition"].get(lead.condition_id, ""), lead.timeframe, lead.budget, lead.contact_preference,
        lead.utm_source, lead.utm_medium, lead.utm_campaign, names["user"].get(lead.assigned_to_id, ""),
        lead.sla_due_at.isoformat() if lead.sla_due_at else "", reference(lead.duplicate_of_id),
    ]  # fmt: skip
    if include_details:
        row += [
            lead.details,
            lead.diagnosis_date.isoformat() if lead.diagnosis_date else "",
            lead.injury_level,
        ]
    return [csv_cell(value) for value in row]


def csv_chunks(
    filters: queue.QueueFilters, include_details: bool, exported: access_log.ExportedLeads
) -> Iterator[str]:
    """The CSV text, a page of leads at a time: each page's leads are written to the access log,
    and committed, before its rows go out, so the log holds every lead that left (and no more
    than one page besides, should the download stop)."""
    names = {
        "user": dict(db.session.execute(sa.select(User.id, User.email)).all()),
        "treatment": dict(db.session.execute(sa.select(Treatment.id, Treatment.slug)).all()),
        "condition": dict(db.session.execute(sa.select(Condition.id, Condition.slug)).all()),
    }

    @cache
    def reference(lead_id: int | None) -> str:
        return db.session.scalar(sa.select(Lead.reference).filter_by(id=lead_id)) if lead_id else ""

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS + (DETAIL_COLUMNS if include_details else ()))
    for leads in queue.iter_matching(filters, batch=access_log.BATCH):
        writer.writerows(_row(lead, include_details, names, reference) for lead in leads)
        exported.record([lead.id for lead in leads])
        db.session.commit()  # the page's leads are in the log before a byte of them goes out
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
    db.session.rollback()  # end the read transaction before the response ends

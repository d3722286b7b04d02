"""The coordinator queue: filters, search and urgency-ordered keyset pagination over leads.

The queue is four segments, most urgent first: unroutable, needs review (both oldest first:
they have waited longest), SLA overdue (most overdue first), then everything else, newest
first. Each segment is read with its own indexed, LIMITed query and a keyset cursor, so a
page costs the same on the first page as on the thousandth, with a million leads.
"""

import heapq
import itertools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from leads.extensions import db
from leads.ids import id_from
from leads.models import Assignment, Condition, Lead, Treatment, sla_running
from leads.patients.privacy import closing_for_inactivity
from leads.staff.search import search_condition
from leads.staff.stats_live import NO_SOURCE
from leads.timeutil import utcnow
from leads.workflow import ATTENTION_ORDER, OPEN, SLA_PENDING, LeadStatus

S = LeadStatus

UNROUTABLE, NEEDS_REVIEW, OVERDUE, REST = range(4)
COUNT_CEILING = 1000  # counts stop here: "1,000+" is all a person needs to know
# The source filter's value for leads without a utm_source, the same in every language (links
# carry it; the page words it in the reader's language); old links name it as the stats page
# stores it (NO_SOURCE), which is still taken.
NO_SOURCE_FILTER = "(none)"


@dataclass(frozen=True)
class QueueFilters:
    """What the coordinator asked for; every field optional."""

    q: str = ""
    status: str = ""  # a LeadStatus value, "open", or "" for any
    treatment_id: int | None = None
    condition_id: int | None = None
    provider_id: int | None = None
    country: str = ""
    source: str = ""  # utm_source; NO_SOURCE_FILTER (or the stats page's NO_SOURCE) for leads without one
    assigned: str = ""  # "", "mine", "unassigned" or a user id
    created_from: date | None = None
    created_to: date | None = None
    overdue: bool = False
    erasure: bool = False  # the patient asked for erasure and it is not carried out yet
    closing: bool = False  # open, and retention closes it for inactivity soon (`closing_for_inactivity`)
    # An erasure at its deadline left it, linked to the erased request, and nobody has judged it yet.
    left_by_erasure: bool = False
    user_id: int | None = None  # the viewer, for "mine"


# segment.microseconds-since-1970.lead-id, bounded so that no link overflows: 16 digits of
# microseconds span the years 1653 to 2286, and the id is one an id column holds (id_from).
_CURSOR = re.compile(r"([0-3])\.(-?[0-9]{1,16})\.([0-9]+)")


@dataclass(frozen=True)
class Cursor:
    segment: int
    key: datetime
    lead_id: int

    def encode(self) -> str:
        micros = int((self.key - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
        return f"{self.segment}.{micros}.{self.lead_id}"

    @classmethod
    def decode(cls, text: str | None) -> "Cursor | None":
        """The cursor in `text`, or None when it is missing, malformed or out of range."""
        match = _CURSOR.fullmatch(text or "")
        lead_id = id_from(match[3]) if match else None
        if lead_id is None:
            return None
        key = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(match[2]))
        return cls(int(match[1]), key, lead_id)


@dataclass
class QueueRow:
    lead: Lead
    segment: int
    sla_running: bool = False  # its SLA due time still matters (`with_sla_clocks`)


@dataclass
class QueuePage:
    rows: list[QueueRow] = field(default_factory=list)
    next_cursor: str | None = None
    prev_cursor: str | None = None


# Unroutable and needs-review leads have segments of their own; the rest of SLA_PENDING can be overdue.
OVERDUE_STATUSES = tuple(sorted(SLA_PENDING - set(ATTENTION_ORDER)))


def _segment_parts(segment: int, now: datetime) -> list:
    """The WHERE clause of each part of a segment; the overdue segment is one part per status,
    so each part reads the (status, sla_due_at) index in order with an equality on status. Overdue
    is past due with the SLA clock still running (`sla_running`): a lead taken in hand once and
    back in one of these statuses is not."""
    if segment == UNROUTABLE:
        return [Lead.status == S.UNROUTABLE]
    if segment == NEEDS_REVIEW:
        return [Lead.status == S.NEEDS_REVIEW]
    if segment == OVERDUE:
        return [
            sa.and_(Lead.status == status, Lead.sla_due_at < now, sla_running())
            for status in OVERDUE_STATUSES
        ]
    # sla_running() holds IS NOT NULL, which keeps NOT(overdue) true for leads without an SLA.
    overdue = sa.and_(Lead.status.in_(OVERDUE_STATUSES), Lead.sla_due_at < now, sla_running())
    return [sa.and_(Lead.status.not_in(ATTENTION_ORDER), sa.not_(overdue))]


def _segment_order(segment: int) -> tuple[sa.ColumnElement, bool]:
    """The sort column of a segment and whether it runs ascending."""
    if segment == OVERDUE:
        return Lead.sla_due_at, True
    return Lead.created_at, segment in (UNROUTABLE, NEEDS_REVIEW)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def filter_conditions(filters: QueueFilters, now: datetime) -> list:
    """The WHERE clauses for `filters` (an empty list for an unfiltered queue)."""
    where = []
    if filters.q.strip():
        where.append(search_condition(filters.q))
    if filters.status == "open":
        where.append(Lead.status.in_(sorted(OPEN)))
    elif filters.status:
        where.append(Lead.status == filters.status)
    if filters.treatment_id is not None:
        where.append(Lead.treatment_id == filters.treatment_id)
    if filters.condition_id is not None:
        where.append(Lead.condition_id == filters.condition_id)
    if filters.provider_id is not None:
        # EXISTS probes the (lead_id, provider_id) unique index row by row in queue order.
        where.append(
            sa.exists().where(Assignment.lead_id == Lead.id, Assignment.provider_id == filters.provider_id)
        )
    if filters.country:
        where.append(Lead.country == filters.country.upper())
    if filters.source in (NO_SOURCE_FILTER, NO_SOURCE):
        where.append(Lead.utm_source.is_(None))
    elif filters.source:
        where.append(Lead.utm_source == filters.source)
    if filters.assigned == "mine":
        where.append(Lead.assigned_to_id == filters.user_id)
    elif filters.assigned == "unassigned":
        where.append(Lead.assigned_to_id.is_(None))
    elif filters.assigned.isdigit():
        where.append(Lead.assigned_to_id == int(filters.assigned))
    if filters.created_from:
        where.append(Lead.created_at >= _day_start(filters.created_from))
    if filters.created_to:
        where.append(Lead.created_at < _day_start(filters.created_to + timedelta(days=1)))
    if filters.overdue:
        where.append(sa.and_(sla_running(), Lead.sla_due_at < now))
    if filters.erasure:
        where.append(sa.and_(Lead.erasure_requested_at.is_not(None), Lead.anonymised_at.is_(None)))
    if filters.closing:
        where.append(closing_for_inactivity(now))
    if filters.left_by_erasure:
        # The predicate of the partial index ix_lead_left_by_erasure, which holds only these.
        where.append(sa.and_(Lead.left_by_erasure_at.is_not(None), Lead.anonymised_at.is_(None)))
    return where


def _segment_rows(segment, where, cursor, limit, *, backwards: bool, now) -> list[Lead]:
    column, ascending = _segment_order(segment)
    forward = ascending != backwards  # the direction this query walks the index
    order = (column.asc(), Lead.id.asc()) if forward else (column.desc(), Lead.id.desc())
    keyset = []
    if cursor is not None and cursor.segment == segment:
        if forward:
            keyset = [column >= cursor.key, sa.or_(column > cursor.key, Lead.id > cursor.lead_id)]
        else:
            keyset = [column <= cursor.key, sa.or_(column < cursor.key, Lead.id < cursor.lead_id)]
    parts = [
        list(db.session.scalars(sa.select(Lead).where(part, *where, *keyset).order_by(*order).limit(limit)))
        for part in _segment_parts(segment, now)
    ]
    if len(parts) == 1:
        return parts[0]
    merged = heapq.merge(*parts, key=lambda lead: (getattr(lead, column.key), lead.id), reverse=not forward)
    return list(itertools.islice(merged, limit))


def _cursor_for(row: QueueRow) -> Cursor:
    column, _ = _segment_order(row.segment)
    return Cursor(row.segment, getattr(row.lead, column.key), row.lead.id)


def fetch_page(
    filters: QueueFilters,
    *,
    limit: int,
    after: Cursor | None = None,
    before: Cursor | None = None,
    now: datetime | None = None,
    where: list | None = None,
) -> QueuePage:
    """One page of the queue, after (or before) a cursor, with cursors for its neighbours.

    `where` is filter_conditions(filters, now) when the caller already built it (a search may
    have scanned the table once to build it).
    """
    now = now or utcnow()
    where = filter_conditions(filters, now) if where is None else where
    backwards = before is not None and after is None
    cursor = before if backwards else after
    segments = (
        range(cursor.segment, -1, -1) if backwards and cursor else range(cursor.segment if cursor else 0, 4)
    )
    rows: list[QueueRow] = []
    for segment in segments:
        wanted = limit + 1 - len(rows)
        rows += [
            QueueRow(lead, segment)
            for lead in _segment_rows(segment, where, cursor, wanted, backwards=backwards, now=now)
        ]
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    page = QueuePage(rows=rows)
    if rows:
        if (more and not backwards) or (backwards and cursor):
            page.next_cursor = _cursor_for(rows[-1]).encode()
        if (more and backwards) or (not backwards and cursor):
            page.prev_cursor = _cursor_for(rows[0]).encode()
    return page


def with_sla_clocks(page: QueuePage) -> QueuePage:
    """Mark the rows whose SLA clock still runs (`sla_running`), one query for the page: the others'
    due time no longer matters (a booked lead, one taken in hand and back in triage)."""
    ids = [row.lead.id for row in page.rows]
    running = (
        set(db.session.scalars(sa.select(Lead.id).where(Lead.id.in_(ids), sla_running()))) if ids else set()
    )
    for row in page.rows:
        row.sla_running = row.lead.id in running
    return page


def bounded_count(where: list, ceiling: int = COUNT_CEILING) -> int:
    """How many leads match, counting no further than `ceiling`."""
    limited = sa.select(Lead.id).where(*where).limit(ceiling).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(limited))


def count_matching(filters: QueueFilters, now: datetime | None = None) -> int:
    return bounded_count(filter_conditions(filters, now or utcnow()))


def attention_counts(user_id: int, now: datetime | None = None) -> dict[str, int]:
    """The at-a-glance numbers above the queue (each bounded)."""
    now = now or utcnow()
    base = QueueFilters(user_id=user_id)
    return {
        "unroutable": count_matching(replace(base, status=S.UNROUTABLE), now),
        "needs_review": count_matching(replace(base, status=S.NEEDS_REVIEW), now),
        "overdue": count_matching(replace(base, overdue=True), now),
        "mine": count_matching(replace(base, assigned="mine", status="open"), now),
        "erasure": count_matching(replace(base, erasure=True), now),
        "left_by_erasure": count_matching(replace(base, left_by_erasure=True), now),
    }


def iter_matching(filters: QueueFilters, *, batch: int = 1000, now: datetime | None = None):
    """Every matching lead in queue order, a list of up to `batch` at a time (for the CSV export)."""
    now = now or utcnow()
    where = filter_conditions(filters, now)
    cursor = None
    while True:
        page = fetch_page(filters, limit=batch, after=cursor, now=now, where=where)
        if page.rows:
            yield [row.lead for row in page.rows]
        if page.next_cursor is None:
            return
        cursor = Cursor.decode(page.next_cursor)


def taxonomy_choices() -> tuple[list[Treatment], list[Condition]]:
    treatments = db.session.scalars(sa.select(Treatment).order_by(Treatment.sort_order, Treatment.name))
    conditions = db.session.scalars(sa.select(Condition).order_by(Condition.sort_order, Condition.name))
    return list(treatments), list(conditions)

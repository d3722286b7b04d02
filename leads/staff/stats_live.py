"""The stats figures read straight from the leads, assignments, events and quotes of some time
ranges, one `Figures` per UTC day: what the daily summaries store, and what the page computes
live for the days not (or no longer) summarised."""

from collections import defaultdict
from datetime import date, datetime

import sqlalchemy as sa

from leads.extensions import db
from leads.models import Assignment, Lead, LeadEvent, Quote, sla_running
from leads.staff.stats_figures import Figures
from leads.workflow import QUOTE_WAS_CHOSEN, SLA_PENDING, TAKEN_IN_HAND, LeadStatus

S = LeadStatus
FUNNEL_STAGES = (S.ROUTED, S.CONTACTED, S.QUOTED, S.CHOSEN, S.BOOKED)
# The SLA is met when the lead first leaves SLA_PENDING.
HANDLED = tuple(sorted(TAKEN_IN_HAND))
# The key of the leads without a utm_source in `by_source` (stored so in the daily summaries too),
# never shown: the stats page words it in the reader's language and links it with the queue's
# own NO_SOURCE_FILTER. The queue's source filter still takes it, for links made before.
NO_SOURCE = "(direct)"

Ranges = list[tuple[datetime, datetime]]  # [start, end) instants


def utc_day(column):
    if db.engine.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)


def as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def seconds_between(start, end):
    if db.engine.dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def within(column, ranges: Ranges):
    return sa.or_(*(sa.and_(column >= start, column < end) for start, end in ranges))


def figures_by_day(ranges: Ranges, now: datetime) -> dict[date, Figures]:
    """The figures of the leads received and the assignments made in `ranges`, per UTC day, with
    SLA breaches as of `now`."""
    days: defaultdict[date, Figures] = defaultdict(Figures)
    if not ranges:
        return {}
    leads_in = within(Lead.created_at, ranges)
    lead_day = utc_day(Lead.created_at).label("day")
    for day, status, country, source, count in db.session.execute(
        sa.select(lead_day, Lead.status, Lead.country, Lead.utm_source, sa.func.count(Lead.id))
        .where(leads_in)
        .group_by(sa.text("day"), Lead.status, Lead.country, Lead.utm_source)
    ):
        figures = days[as_date(day)]
        figures.per_day[as_date(day)] += count
        figures.by_status[status] += count
        figures.by_country[country] += count
        figures.by_source[source or NO_SOURCE] += count
    for day, rank, count in _stage_ranks(leads_in, lead_day):
        days[as_date(day)].stage_ranks[int(rank)] += count
    _add_sla(days, leads_in, lead_day, now)
    _add_assignments(days, within(Assignment.created_at, ranges))
    _add_quotes(days, leads_in, lead_day)
    return dict(days)


def _stage_ranks(leads_in, lead_day):
    """(day, furthest funnel rank reached at any time (0: none), leads)."""
    ranks = {stage.value: rank for rank, stage in enumerate(FUNNEL_STAGES, start=1)}

    def rank_of(column):
        return sa.case(*((column == status, rank) for status, rank in ranks.items()), else_=0)

    events = (
        sa.select(LeadEvent.lead_id, sa.func.max(rank_of(LeadEvent.to_status)).label("rank"))
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .where(leads_in, LeadEvent.to_status.in_(list(ranks)))
        .group_by(LeadEvent.lead_id)
        .subquery()
    )
    event_rank, status_rank = sa.func.coalesce(events.c.rank, 0), rank_of(Lead.status)
    best = sa.case((event_rank > status_rank, event_rank), else_=status_rank).label("best")
    return db.session.execute(
        sa.select(lead_day, best, sa.func.count(Lead.id))
        .outerjoin(events, events.c.lead_id == Lead.id)
        .where(leads_in)
        .group_by(sa.text("day"), sa.text("best"))
    ).all()


def _add_sla(days, leads_in, lead_day, now: datetime) -> None:
    """SLA breaches: due before the lead was first taken in hand (or before `now`, if never)."""
    handled = (
        sa.select(LeadEvent.lead_id, sa.func.min(LeadEvent.created_at).label("handled_at"))
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .where(leads_in, LeadEvent.to_status.in_(HANDLED))
        .group_by(LeadEvent.lead_id)
        .subquery()
    )
    late = Lead.sla_due_at < sa.func.coalesce(handled.c.handled_at, now)
    still_open = sa.and_(handled.c.handled_at.is_(None), Lead.sla_due_at >= now)
    rows = db.session.execute(
        sa.select(
            lead_day,
            sa.func.count(Lead.sla_due_at),
            sa.func.sum(sa.case((late, 1), else_=0)),
            sa.func.sum(sa.case((still_open, 1), else_=0)),
            sa.func.max(sa.case((still_open, Lead.sla_due_at))),
        )
        .outerjoin(handled, handled.c.lead_id == Lead.id)
        .where(leads_in)
        .group_by(sa.text("day"))
    )
    for day, with_sla, breached, still, due_max in rows:
        figures = days[as_date(day)]
        figures.with_sla, figures.breached, figures.sla_open = with_sla, int(breached or 0), int(still or 0)
        figures.open_due_max = due_max


def _add_assignments(days, assignments_in) -> None:
    day = utc_day(Assignment.created_at).label("day")
    answered = Assignment.responded_at.is_not(None).label("answered")
    for when, provider_id, status, was_answered, count in db.session.execute(
        sa.select(day, Assignment.provider_id, Assignment.status, answered, sa.func.count(Assignment.id))
        .where(assignments_in)
        .group_by(sa.text("day"), Assignment.provider_id, Assignment.status, sa.text("answered"))
    ):
        days[as_date(when)].assignments[(provider_id, status, bool(was_answered))] += count
    for when, provider_id, seconds in db.session.execute(
        sa.select(
            day, Assignment.provider_id, seconds_between(Assignment.created_at, Assignment.responded_at)
        ).where(assignments_in, Assignment.responded_at.is_not(None))
    ):
        days[as_date(when)].response_seconds.setdefault(provider_id, []).append(float(seconds))


def _add_quotes(days, leads_in, lead_day) -> None:
    """Quotes to the leads of each day: per lead with a quote, and per provider."""
    # A choice a coordinator ended later was still the patient's choice.
    chosen = sa.case((Quote.status.in_(sorted(QUOTE_WAS_CHOSEN)), 1), else_=0)
    for day, quotes, first_seconds, was_chosen in db.session.execute(
        sa.select(
            lead_day,
            sa.func.count(Quote.id),
            sa.func.min(seconds_between(Lead.created_at, Quote.created_at)),
            sa.func.max(chosen),
        )
        .join(Lead, Lead.id == Quote.lead_id)
        .where(leads_in)
        .group_by(Quote.lead_id, sa.text("day"))
    ):
        figures = days[as_date(day)]
        figures.leads_with_quote += 1
        figures.quotes += quotes
        figures.chosen_leads += bool(was_chosen)
        figures.first_quote_seconds.append(float(first_seconds))
    for day, provider_id, quotes, chosen_quotes in db.session.execute(
        sa.select(lead_day, Assignment.provider_id, sa.func.count(Quote.id), sa.func.sum(chosen))
        .join(Assignment, Assignment.id == Quote.assignment_id)
        .join(Lead, Lead.id == Quote.lead_id)
        .where(leads_in)
        .group_by(sa.text("day"), Assignment.provider_id)
    ):
        figures = days[as_date(day)]
        figures.provider_quotes[provider_id] += quotes
        figures.provider_chosen[provider_id] += int(chosen_quotes or 0)


def sla_waiting(leads_in, now: datetime) -> tuple[int, list[tuple[int, str, datetime]]]:
    """Of the leads in `leads_in`, those past due and still not taken in hand: a count bounded at
    1,000 and the 20 oldest (id, reference, due). Always live: the status index serves it."""
    # The queue's "SLA overdue" (where the page links), with the same rule: the clock still runs.
    waiting = sa.and_(leads_in, sla_running(), Lead.sla_due_at < now)
    # The oldest per waiting status, each an ordered walk of the (status, due) index over the few
    # waiting leads: one walk of the due-date index for all of them wades through every lead
    # handled long ago (5 s for a year of a million leads).
    per_status = [
        sa.select(Lead.id, Lead.reference, Lead.sla_due_at)
        .where(leads_in, Lead.status == status, Lead.sla_due_at < now, sla_running())
        .order_by(Lead.sla_due_at)
        .limit(20)
        .subquery()
        for status in sorted(SLA_PENDING)
    ]
    oldest = sa.union_all(*(sa.select(*subquery.c) for subquery in per_status)).subquery()
    rows = db.session.execute(sa.select(*oldest.c).order_by(oldest.c.sla_due_at).limit(20)).all()
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(sa.select(Lead.id).where(waiting).limit(1000).subquery())
    )
    return count, [tuple(row) for row in rows]

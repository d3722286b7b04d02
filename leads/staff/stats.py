"""Pipeline statistics over a period: pure aggregation functions, and one `collect` that feeds
them from the database (grouping in SQL where the database can)."""

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from leads.extensions import db
from leads.models import Assignment, AssignmentStatus, Lead, LeadEvent, Provider, Quote
from leads.workflow import ACCEPTANCES, AWAITING_ANSWER, SLA_PENDING, LeadStatus, QuoteStatus

S = LeadStatus
FUNNEL_STAGES = (S.ROUTED, S.CONTACTED, S.QUOTED, S.CHOSEN, S.BOOKED)
# The SLA is met when the lead first leaves SLA_PENDING.
HANDLED = tuple(s.value for s in S if s not in SLA_PENDING)
NO_SOURCE = "(direct)"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @classmethod
    def last_days(cls, days: int, today: date) -> "Period":
        return cls(today - timedelta(days=days - 1), today)


# Pure aggregation -------------------------------------------------------------------------


def daily_series(period: Period, counts: dict[date, int]) -> list[tuple[date, int]]:
    """One (day, count) per day of the period, zero where nothing happened."""
    return [
        (period.start + timedelta(days=i), counts.get(period.start + timedelta(days=i), 0))
        for i in range(period.days)
    ]


def median_seconds(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def funnel(total: int, reached: dict[str, int]) -> list[tuple[str, int]]:
    """Received, then how many leads reached each stage (or a later one)."""
    return [("received", total)] + [(stage.value, reached.get(stage.value, 0)) for stage in FUNNEL_STAGES]


def reached_from_ranks(rank_counts: Counter) -> dict[str, int]:
    """Leads that reached each stage or a later one, from counts of the furthest stage reached
    (rank 1 is the first funnel stage, 0 none)."""
    return {
        stage.value: sum(n for rank, n in rank_counts.items() if rank >= i)
        for i, stage in enumerate(FUNNEL_STAGES, start=1)
    }


def fold_groups(rows: Iterable[tuple]) -> tuple[dict[date, int], Counter, Counter, Counter]:
    """(day, status, country, source, count) groups folded into leads per day, by status, by
    country and by source (NO_SOURCE for none)."""
    per_day: Counter = Counter()
    by_status: Counter = Counter()
    by_country: Counter = Counter()
    by_source: Counter = Counter()
    for day, status, country, source, count in rows:
        per_day[_as_date(day)] += count
        by_status[status] += count
        by_country[country] += count
        by_source[source or NO_SOURCE] += count
    return dict(per_day), by_status, by_country, by_source


def top(counter: Counter, n: int = 10, other: str = "Other") -> list[tuple[str, int]]:
    """The n biggest entries, the rest summed as `other`; ties broken by label."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    head, tail = ranked[:n], ranked[n:]
    if tail:
        head.append((other, sum(count for _, count in tail)))
    return head


@dataclass
class ProviderStats:
    provider_id: int
    name: str
    assignments: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    open: int = 0
    response_times: list[float] = field(default_factory=list)

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted among the assignments that got an answer or expired."""
        return rate(self.accepted, self.accepted + self.declined + self.expired)

    @property
    def median_response_seconds(self) -> float | None:
        return median_seconds(self.response_times)


def provider_stats(
    counts: Iterable[tuple[int, str, str, bool, int]], response_seconds: dict[int, list[float]]
) -> list[ProviderStats]:
    """From (provider id, name, assignment status, answered, count) rows and each provider's
    response times in seconds, busiest provider first."""
    by_provider: dict[int, ProviderStats] = {}
    for provider_id, name, status, answered, count in counts:
        stats = by_provider.setdefault(provider_id, ProviderStats(provider_id, name))
        stats.assignments += count
        # An acceptance stays one when the patient later chose another clinic (not_chosen).
        if status in ACCEPTANCES and answered:
            stats.accepted += count
        elif status == AssignmentStatus.DECLINED:
            stats.declined += count
        elif status == AssignmentStatus.EXPIRED:
            stats.expired += count
        elif status in AWAITING_ANSWER:
            stats.open += count
        # Ended by the patient or a coordinator: neither open nor held against the provider.
    for provider_id, seconds in response_seconds.items():
        if provider_id in by_provider:
            by_provider[provider_id].response_times = list(seconds)
    return sorted(by_provider.values(), key=lambda s: (-s.assignments, s.name))


@dataclass
class SlaStats:
    with_sla: int = 0
    breached: int = 0
    waiting_past_due: int = 0  # of the breached, still not taken in hand (bounded count)
    oldest_waiting: list[tuple[int, str, datetime]] = field(default_factory=list)  # id, reference, due

    @property
    def breach_rate(self) -> float | None:
        return rate(self.breached, self.with_sla)


# Reading the database ---------------------------------------------------------------------


@dataclass
class StatsReport:
    period: Period
    total: int
    per_day: list[tuple[date, int]]
    by_status: list[tuple[str, int]]
    funnel: list[tuple[str, int]]
    providers: list[ProviderStats]
    overall_acceptance: float | None
    overall_median_response: float | None
    by_source: list[tuple[str, int]]
    by_country: list[tuple[str, int]]
    sla: SlaStats
    quotes: "QuoteStats"


def _utc_day(column):
    if db.engine.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def collect(period: Period, now: datetime) -> StatsReport:
    in_period = sa.and_(Lead.created_at >= period.start_at, Lead.created_at < period.end_at)
    # One pass over the period's leads; fold_groups() turns the groups into the breakdowns.
    groups = db.session.execute(
        sa.select(_utc_day(Lead.created_at).label("day"), Lead.status, Lead.country, Lead.utm_source,
                  sa.func.count(Lead.id))
        .where(in_period)
        .group_by(sa.text("day"), Lead.status, Lead.country, Lead.utm_source)
    ).all()  # fmt: skip
    per_day, by_status, by_country, sources = fold_groups(groups)
    total = sum(by_status.values())
    reached = reached_from_ranks(_stage_ranks(in_period))

    in_assignments = sa.and_(Assignment.created_at >= period.start_at, Assignment.created_at < period.end_at)
    answered = Assignment.responded_at.is_not(None).label("answered")
    assignment_counts = db.session.execute(
        sa.select(Provider.id, Provider.name, Assignment.status, answered, sa.func.count(Assignment.id))
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(in_assignments)
        .group_by(Provider.id, Provider.name, Assignment.status, sa.text("answered"))
    ).all()
    response_seconds: dict[int, list[float]] = {}
    for provider_id, seconds in db.session.execute(
        sa.select(
            Assignment.provider_id, _seconds_between(Assignment.created_at, Assignment.responded_at)
        ).where(in_assignments, Assignment.responded_at.is_not(None))
    ):
        response_seconds.setdefault(provider_id, []).append(float(seconds))
    providers = provider_stats(assignment_counts, response_seconds)
    accepted = sum(p.accepted for p in providers)
    decided = sum(p.accepted + p.declined + p.expired for p in providers)
    return StatsReport(
        period=period,
        total=total,
        per_day=daily_series(period, per_day),
        by_status=sorted(by_status.items(), key=lambda item: list(S).index(S(item[0]))),
        funnel=funnel(total, reached),
        providers=providers,
        overall_acceptance=rate(accepted, decided),
        overall_median_response=median_seconds(t for p in providers for t in p.response_times),
        by_source=top(sources),
        by_country=top(by_country),
        sla=_sla(in_period, now),
        quotes=_quote_figures(in_period),
    )


def _stage_ranks(in_period) -> Counter:
    """How many of the period's leads reached each funnel stage rank (0: none) at any time."""
    ranks = {stage.value: rank for rank, stage in enumerate(FUNNEL_STAGES, start=1)}

    def rank_of(column):
        return sa.case(*((column == status, rank) for status, rank in ranks.items()), else_=0)

    events = (
        sa.select(LeadEvent.lead_id, sa.func.max(rank_of(LeadEvent.to_status)).label("rank"))
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .where(in_period, LeadEvent.to_status.in_(list(ranks)))
        .group_by(LeadEvent.lead_id)
        .subquery()
    )
    event_rank, status_rank = sa.func.coalesce(events.c.rank, 0), rank_of(Lead.status)
    best = sa.case((event_rank > status_rank, event_rank), else_=status_rank).label("best")
    rows = db.session.execute(
        sa.select(best, sa.func.count(Lead.id))
        .outerjoin(events, events.c.lead_id == Lead.id)
        .where(in_period)
        .group_by(sa.text("best"))
    )
    return Counter({int(rank): count for rank, count in rows})


def _sla(in_period, now: datetime) -> SlaStats:
    """SLA breaches counted in the database: due before the lead was first taken in hand."""
    handled = (
        sa.select(LeadEvent.lead_id, sa.func.min(LeadEvent.created_at).label("handled_at"))
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .where(in_period, LeadEvent.to_status.in_(HANDLED))
        .group_by(LeadEvent.lead_id)
        .subquery()
    )
    late = Lead.sla_due_at < sa.func.coalesce(handled.c.handled_at, now)
    with_sla, breached = db.session.execute(
        sa.select(
            sa.func.count(Lead.sla_due_at), sa.func.coalesce(sa.func.sum(sa.case((late, 1), else_=0)), 0)
        )
        .outerjoin(handled, handled.c.lead_id == Lead.id)
        .where(in_period)
    ).one()
    waiting = sa.and_(in_period, Lead.status.in_(sorted(SLA_PENDING)), Lead.sla_due_at < now)
    oldest = db.session.execute(
        sa.select(Lead.id, Lead.reference, Lead.sla_due_at).where(waiting).order_by(Lead.sla_due_at).limit(20)
    ).all()
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(sa.select(Lead.id).where(waiting).limit(1000).subquery())
    )
    return SlaStats(with_sla, int(breached), count, [tuple(row) for row in oldest])


def _seconds_between(start, end):
    if db.engine.dialect.name == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


# Quote figures ----------------------------------------------------------------------------


@dataclass
class ProviderQuotes:
    provider_id: int
    name: str
    quotes: int
    chosen: int


@dataclass
class QuoteStats:
    """Quotes to the period's leads: how many leads got one, how fast, how many, how often chosen."""

    leads_with_quote: int = 0
    quotes: int = 0
    chosen_leads: int = 0
    first_quote_seconds: list[float] = field(default_factory=list)
    providers: list[ProviderQuotes] = field(default_factory=list)

    @property
    def quotes_per_lead(self) -> float | None:
        """Among the leads with at least one quote."""
        return rate(self.quotes, self.leads_with_quote)

    @property
    def chosen_share(self) -> float | None:
        """Patients who chose a clinic among those who had at least one quote."""
        return rate(self.chosen_leads, self.leads_with_quote)

    @property
    def median_first_quote_seconds(self) -> float | None:
        return median_seconds(self.first_quote_seconds)


def quote_stats(
    per_lead: Iterable[tuple[int, float, bool]], per_provider: Iterable[tuple[int, str, int, int]]
) -> QuoteStats:
    """From (quotes, seconds from request to first quote, chosen) per lead with a quote and
    (provider id, name, quotes, chosen) per provider; providers with the most quotes first."""
    figures = QuoteStats()
    for quotes, first_seconds, chosen in per_lead:
        figures.leads_with_quote += 1
        figures.quotes += quotes
        figures.chosen_leads += bool(chosen)
        figures.first_quote_seconds.append(float(first_seconds))
    figures.providers = sorted(
        (ProviderQuotes(provider_id, name, int(quotes), int(chosen or 0))
         for provider_id, name, quotes, chosen in per_provider),
        key=lambda p: (-p.quotes, p.name),
    )  # fmt: skip
    return figures


def _quote_figures(in_period) -> QuoteStats:
    chosen = sa.case((Quote.status == QuoteStatus.CHOSEN.value, 1), else_=0)
    per_lead = db.session.execute(
        sa.select(
            sa.func.count(Quote.id),
            sa.func.min(_seconds_between(Lead.created_at, Quote.created_at)),
            sa.func.max(chosen),
        )
        .join(Lead, Lead.id == Quote.lead_id)
        .where(in_period)
        .group_by(Quote.lead_id)
    ).all()
    per_provider = db.session.execute(
        sa.select(Provider.id, Provider.name, sa.func.count(Quote.id), sa.func.sum(chosen))
        .join(Assignment, Assignment.id == Quote.assignment_id)
        .join(Provider, Provider.id == Assignment.provider_id)
        .join(Lead, Lead.id == Quote.lead_id)
        .where(in_period)
        .group_by(Provider.id, Provider.name)
    ).all()
    return quote_stats(per_lead, per_provider)

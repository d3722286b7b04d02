"""Pipeline statistics over a period: pure aggregation functions, and one `collect` that feeds
them from the database (grouping in SQL where the database can)."""

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from leads.extensions import db
from leads.models import Assignment, AssignmentStatus, Lead, LeadEvent, Provider
from leads.workflow import LeadStatus

S = LeadStatus
FUNNEL_STAGES = (S.ROUTED, S.CONTACTED, S.QUOTED, S.BOOKED)
# The SLA is met when the lead first leaves these statuses.
SLA_PENDING = frozenset({S.NEW, S.NEEDS_REVIEW, S.ROUTED, S.UNROUTABLE})
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


def top(counter: Counter, n: int = 10, other: str = "Other") -> list[tuple[str, int]]:
    """The n biggest entries, the rest summed as `other`; ties broken by label."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    head, tail = ranked[:n], ranked[n:]
    if tail:
        head.append((other, sum(count for _, count in tail)))
    return head


def is_sla_breached(sla_due_at: datetime | None, handled_at: datetime | None, now: datetime) -> bool:
    """Handled after its due time, or still not handled with the due time past."""
    if sla_due_at is None:
        return False
    return (handled_at or now) > sla_due_at


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


def provider_stats(rows: Iterable[tuple[int, str, str, datetime, datetime | None]]) -> list[ProviderStats]:
    """From (provider id, name, status, notified at, responded at) rows, busiest first."""
    by_provider: dict[int, ProviderStats] = {}
    for provider_id, name, status, created_at, responded_at in rows:
        stats = by_provider.setdefault(provider_id, ProviderStats(provider_id, name))
        stats.assignments += 1
        if status == AssignmentStatus.ACCEPTED:
            stats.accepted += 1
        elif status == AssignmentStatus.DECLINED:
            stats.declined += 1
        elif status == AssignmentStatus.EXPIRED:
            stats.expired += 1
        else:
            stats.open += 1
        if responded_at is not None:
            stats.response_times.append((responded_at - created_at).total_seconds())
    return sorted(by_provider.values(), key=lambda s: (-s.assignments, s.name))


@dataclass
class SlaStats:
    with_sla: int = 0
    breached: int = 0
    breached_open: list[tuple[int, str, datetime]] = field(default_factory=list)  # id, reference, due

    @property
    def breach_rate(self) -> float | None:
        return rate(self.breached, self.with_sla)


def sla_stats(
    rows: Iterable[tuple[int, str, str, datetime | None, datetime | None]], now: datetime
) -> SlaStats:
    """From (lead id, reference, status, sla due, first handled at) rows."""
    result = SlaStats()
    for lead_id, reference, status, due, handled_at in rows:
        if due is None:
            continue
        result.with_sla += 1
        if is_sla_breached(due, handled_at, now):
            result.breached += 1
            if handled_at is None and status in SLA_PENDING:
                result.breached_open.append((lead_id, reference, due))
    result.breached_open.sort(key=lambda row: row[2])
    return result


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


def _utc_day(column):
    if db.engine.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def collect(period: Period, now: datetime) -> StatsReport:
    in_period = sa.and_(Lead.created_at >= period.start_at, Lead.created_at < period.end_at)

    def grouped(column) -> Counter:
        rows = db.session.execute(sa.select(column, sa.func.count(Lead.id)).where(in_period).group_by(column))
        return Counter({key: count for key, count in rows})

    day = _utc_day(Lead.created_at)
    per_day = {_as_date(d): n for d, n in grouped(day).items()}
    by_status = grouped(Lead.status)
    total = sum(by_status.values())

    reached = {}
    for i, stage in enumerate(FUNNEL_STAGES):
        later = [s.value for s in FUNNEL_STAGES[i:]]
        ever = sa.exists().where(LeadEvent.lead_id == Lead.id, LeadEvent.to_status.in_(later))
        reached[stage.value] = db.session.scalar(
            sa.select(sa.func.count(Lead.id)).where(in_period, sa.or_(Lead.status.in_(later), ever))
        )

    assignment_rows = db.session.execute(
        sa.select(
            Provider.id, Provider.name, Assignment.status, Assignment.created_at, Assignment.responded_at
        )
        .join(Provider, Provider.id == Assignment.provider_id)
        .where(Assignment.created_at >= period.start_at, Assignment.created_at < period.end_at)
    ).all()
    providers = provider_stats(assignment_rows)
    accepted = sum(p.accepted for p in providers)
    decided = sum(p.accepted + p.declined + p.expired for p in providers)

    sources = Counter({(k or NO_SOURCE): v for k, v in grouped(Lead.utm_source).items()})
    handled = (
        sa.select(LeadEvent.lead_id, sa.func.min(LeadEvent.created_at).label("handled_at"))
        .join(Lead, Lead.id == LeadEvent.lead_id)
        .where(in_period, LeadEvent.to_status.in_(HANDLED))
        .group_by(LeadEvent.lead_id)
        .subquery()
    )
    sla_rows = db.session.execute(
        sa.select(Lead.id, Lead.reference, Lead.status, Lead.sla_due_at, handled.c.handled_at)
        .outerjoin(handled, handled.c.lead_id == Lead.id)
        .where(in_period, Lead.sla_due_at.is_not(None))
    ).all()
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
        by_country=top(grouped(Lead.country)),
        sla=sla_stats(sla_rows, now),
    )

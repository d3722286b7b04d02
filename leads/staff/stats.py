"""Pipeline statistics over a period: pure aggregation functions, and one `collect` that reads
the period's figures (daily summaries and live queries: `stats_summary`, `stats_live`) and turns
them into the page's report."""

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from leads.extensions import db
from leads.messaging.email import MAY_HAVE_ARRIVED_TWICE
from leads.models import AssignmentStatus, EmailMessage, EmailStatus, Lead, LeadEvent, Provider
from leads.staff import stats_live, stats_summary
from leads.staff.stats_figures import Figures
from leads.staff.stats_live import FUNNEL_STAGES, S
from leads.workflow import ACCEPTANCES, AWAITING_ANSWER


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


def top(counter: Counter, n: int = 10) -> list[tuple[str | None, int]]:
    """The n biggest entries, the rest summed under None (which the page calls "Other" in the
    reader's words, and which no source or country can be); ties broken by label."""
    ranked: list[tuple[str | None, int]] = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    head, tail = ranked[:n], ranked[n:]
    if tail:
        head.append((None, sum(count for _, count in tail)))
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
    by_source: list[tuple[str | None, int]]  # None: the rest (see `top`)
    by_country: list[tuple[str | None, int]]
    sla: SlaStats
    quotes: "QuoteStats"


def collect(period: Period, now: datetime, *, summaries: bool = True) -> StatsReport:
    """The period's figures: from the daily summaries where they hold and live for the rest, or
    (`summaries=False`) all live; both give the same numbers."""
    if summaries:
        figures = stats_summary.figures_for(period.start, period.end, now)
    else:
        figures = Figures()
        for day_figures in stats_live.figures_by_day([(period.start_at, period.end_at)], now).values():
            figures.add(day_figures)
    return report_from(period, figures, now)


def report_from(period: Period, figures: Figures, now: datetime) -> StatsReport:
    """The page's report from a period's figures; the SLA waiting list is always read live."""
    names = dict(db.session.execute(sa.select(Provider.id, Provider.name)).all())
    providers = provider_stats(
        ((provider_id, names[provider_id], status, answered, count)
         for (provider_id, status, answered), count in figures.assignments.items()),
        figures.response_seconds,
    )  # fmt: skip
    accepted = sum(p.accepted for p in providers)
    decided = sum(p.accepted + p.declined + p.expired for p in providers)
    total = sum(figures.by_status.values())
    in_period = sa.and_(Lead.created_at >= period.start_at, Lead.created_at < period.end_at)
    waiting, oldest = stats_live.sla_waiting(in_period, now)
    return StatsReport(
        period=period,
        total=total,
        per_day=daily_series(period, dict(figures.per_day)),
        by_status=sorted(figures.by_status.items(), key=lambda item: list(S).index(S(item[0]))),
        funnel=funnel(total, reached_from_ranks(figures.stage_ranks)),
        providers=providers,
        overall_acceptance=rate(accepted, decided),
        overall_median_response=median_seconds(t for p in providers for t in p.response_times),
        by_source=top(figures.by_source),
        by_country=top(figures.by_country),
        sla=SlaStats(figures.with_sla, figures.breached, waiting, oldest),
        quotes=quote_stats(figures, names),
    )


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


def quote_stats(figures: Figures, names: dict[int, str]) -> QuoteStats:
    """The quote figures of `figures`, naming providers from `names`; most quotes first."""
    return QuoteStats(
        leads_with_quote=figures.leads_with_quote,
        quotes=figures.quotes,
        chosen_leads=figures.chosen_leads,
        first_quote_seconds=list(figures.first_quote_seconds),
        providers=sorted(
            (
                ProviderQuotes(p, names[p], n, figures.provider_chosen[p])
                for p, n in figures.provider_quotes.items()
            ),
            key=lambda q: (-q.quotes, q.name),
        ),
    )


# Email delivery (kept apart from the lead figures) ------------------------------------------


@dataclass(frozen=True)
class DeliveryStats:
    sent: int
    failed: int
    # Delivered after an earlier attempt handed it to the server and never heard the answer.
    may_have_arrived_twice: int


def email_delivery(period: Period) -> DeliveryStats:
    """How the period's emails fared, and how many may have arrived twice (`MAY_HAVE_ARRIVED_TWICE`,
    counted by when the second copy went)."""
    in_period = sa.and_(EmailMessage.created_at >= period.start_at, EmailMessage.created_at < period.end_at)
    counts = dict(
        db.session.execute(
            sa.select(EmailMessage.status, sa.func.count(EmailMessage.id))
            .where(in_period, EmailMessage.status.in_([EmailStatus.SENT, EmailStatus.FAILED]))
            .group_by(EmailMessage.status)
        ).all()
    )
    twice = db.session.scalar(
        sa.select(sa.func.count(LeadEvent.id)).where(
            LeadEvent.kind == MAY_HAVE_ARRIVED_TWICE,
            LeadEvent.created_at >= period.start_at,
            LeadEvent.created_at < period.end_at,
        )
    )
    return DeliveryStats(
        sent=counts.get(EmailStatus.SENT, 0),
        failed=counts.get(EmailStatus.FAILED, 0),
        may_have_arrived_twice=twice,
    )

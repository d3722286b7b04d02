"""The stats page's daily summaries give the numbers of the live computation, also after old
leads change, and the beat task and the rebuild command keep them."""

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from leads.extensions import db
from leads.models import Assignment, Lead, LeadEvent, Quote, StatsDay
from leads.staff import stats, stats_summary
from leads.staff.stats import Period
from leads.timeutil import utcnow
from tests.factories import AssignmentFactory, LeadFactory, ProviderFactory
from tests.helpers import kinds, sqlite_statements
from workers import celery_settings, tasks

# The day grouping and the upsert are written per database.
pytestmark = pytest.mark.pg

STATUSES = ["new", "needs_review", "routed", "unroutable", "contacted", "quoted", "chosen", "booked",
            "closed_lost", "spam", "duplicate", "withdrawn"]  # fmt: skip
PATHS = {  # the statuses a lead went through to reach its current one (events in its history)
    "routed": ["routed"], "unroutable": ["routed", "unroutable"], "contacted": ["routed", "contacted"],
    "quoted": ["routed", "contacted", "quoted"], "chosen": ["routed", "contacted", "quoted", "chosen"],
    "booked": ["routed", "contacted", "quoted", "chosen", "booked"],
    "closed_lost": ["routed", "contacted", "quoted", "closed_lost"], "withdrawn": ["routed", "withdrawn"],
    "spam": ["spam"], "duplicate": ["duplicate"],
}  # fmt: skip


def _event(lead, to_status, at, from_status=None):
    db.session.add(LeadEvent(lead=lead, kind="status_changed", actor_type="system",
                             from_status=from_status, to_status=to_status, created_at=at))  # fmt: skip


@pytest.fixture
def history(app, taxonomy):
    """400 days of leads in every status, with their histories, SLA deadlines met and missed,
    assignments answered or not, and quotes; every stamp as old as the change it stands for."""
    rng = random.Random(14)
    now = utcnow()
    clinics = [ProviderFactory(name=f"Clinic {n} (demo)") for n in range(3)]
    for n in range(240):
        created = now - timedelta(days=rng.uniform(0, 400))
        status = rng.choice(STATUSES)
        lead = LeadFactory(
            status=status, country=rng.choice(["DE", "NO", "SE", "US"]),
            utm_source=rng.choice([None, None, "google", "magazine"]), created_at=created,
            sla_due_at=None if n % 17 == 0 else created + timedelta(hours=24),
        )  # fmt: skip
        _event(lead, "new", created)
        step = timedelta(hours=rng.choice([2, 20, 30, 60]))  # some taken in hand after the deadline
        previous = "new"
        for k, to_status in enumerate(PATHS.get(status, [])):
            _event(lead, to_status, created + step * (k + 1), previous)
            previous = to_status
        if status not in ("new", "needs_review", "spam", "duplicate"):
            for clinic in rng.sample(clinics, rng.randint(1, 3)):
                answer = rng.choice(
                    ["accepted", "declined", "expired", "notified", "not_chosen", "withdrawn"]
                )
                responded = created + timedelta(seconds=rng.uniform(60, 200_000))
                assignment = AssignmentFactory(
                    lead=lead, provider=clinic, status=answer, created_at=created + timedelta(minutes=n % 50),
                    responded_at=responded if answer in ("accepted", "declined", "not_chosen") else None,
                )  # fmt: skip
                if answer in ("accepted", "not_chosen") and rng.random() < 0.7:
                    chosen = status in ("chosen", "booked") and answer == "accepted"
                    db.session.add(Quote(
                        assignment=assignment, lead_id=lead.id, status="chosen" if chosen else "live",
                        created_at=responded + timedelta(hours=rng.uniform(1, 48)),
                    ))  # fmt: skip
    db.session.flush()
    # As if made long ago: stamps as old as the rows.
    db.session.execute(sa.update(Lead).values(updated_at=Lead.created_at))
    db.session.execute(sa.update(Assignment).values(updated_at=Assignment.created_at))
    db.session.execute(sa.update(Quote).values(updated_at=Quote.created_at))
    db.session.commit()
    return now


@pytest.fixture
def live_days(monkeypatch):
    """The days the summary path computes live, as they are asked for."""
    asked: list[tuple] = []
    original = stats_summary.figures_by_day

    def recording(ranges, now):
        asked.extend(ranges)
        return original(ranges, now)

    monkeypatch.setattr(stats_summary, "figures_by_day", recording)
    return asked


def _comparable(report: stats.StatsReport) -> stats.StatsReport:
    """The report with its measured times in one order (medians do not depend on it)."""
    for provider in report.providers:
        provider.response_times.sort()
    report.quotes.first_quote_seconds.sort()
    return report


def _same_as_live(now, days: int) -> stats.StatsReport:
    period = Period.last_days(days, now.date())
    summarised = _comparable(stats.collect(period, now))
    assert summarised == _comparable(stats.collect(period, now, summaries=False))
    return summarised


def _days_of(ranges) -> set:
    days = set()
    for start, end in ranges:
        days |= {(start + timedelta(days=n)).date() for n in range((end - start).days)}
    return days


def test_summaries_give_the_live_numbers_for_30_and_365_days(history, live_days):
    now = history
    written = stats_summary.summarise(now.date() - timedelta(days=n) for n in range(401))
    assert written == 401
    for days in (30, 365):
        live_days.clear()
        report = _same_as_live(now, days)
        assert report.total > 0 and report.providers and report.quotes.quotes
        # Only today (and yesterday, if an SLA deadline there still runs) is computed live.
        assert len(_days_of(live_days)) <= 2


def test_a_later_change_to_an_old_lead_is_counted_at_once_and_then_summarised(history, live_days):
    now = history
    stats_summary.summarise(now.date() - timedelta(days=n) for n in range(401))
    months_ago = sa.and_(
        Lead.created_at < now - timedelta(days=30), Lead.created_at > now - timedelta(days=300)
    )
    old = db.session.scalar(sa.select(Lead).where(Lead.status == "routed", months_ago).limit(1))
    answered = db.session.scalar(
        sa.select(Assignment).join(Lead).where(Assignment.status == "notified", months_ago).limit(1)
    )
    quote = db.session.scalar(sa.select(Quote).join(Lead).where(Quote.status == "live", months_ago).limit(1))
    changed = {
        old.created_at.date(),
        answered.created_at.date(),
        db.session.get(Lead, quote.lead_id).created_at.date(),
    }
    old.change_status("contacted", actor_type="staff")  # the funnel, the status and the SLA move
    answered.change_status("accepted")
    answered.responded_at = now
    quote.change_status("chosen")
    db.session.commit()
    live_days.clear()
    _same_as_live(now, 365)
    assert changed <= _days_of(live_days)  # computed live until beat computes their rows again
    with time_machine.travel(now + timedelta(hours=1)):
        later = utcnow()
        result = stats_summary.refresh(later.date(), keep_days=366)
        assert result.changed >= len(changed)
        live_days.clear()
        _same_as_live(later, 365)
        assert not changed & _days_of(live_days)  # now read from their new rows


def test_beat_fills_missing_recent_days_a_month_at_a_time_and_keeps_yesterday_and_today(history):
    now = history
    first = stats_summary.refresh(now.date(), keep_days=366)
    assert first.filled == stats_summary.FILL_DAYS_PER_RUN and first.written == 2 + first.filled
    days = set(db.session.scalars(sa.select(StatsDay.day)))
    assert {now.date(), now.date() - timedelta(days=1)} <= days
    assert min(days) == now.date() - timedelta(days=2 + stats_summary.FILL_DAYS_PER_RUN - 1)
    again = stats_summary.refresh(now.date(), keep_days=366)
    assert again.filled == stats_summary.FILL_DAYS_PER_RUN and again.changed == 0


@pytest.mark.sqlite_only
@pytest.mark.commits
def test_on_sqlite_the_refresh_holds_the_write_lock_only_to_write_its_rows(history):
    """Beat's refresh computes in readers' transactions, so it never stalls the form's writers."""
    with sqlite_statements() as seen:
        result = stats_summary.refresh(history.date(), keep_days=366)
    assert result.written > 2
    counted = kinds(seen)
    assert counted["BEGIN"] >= 2 and counted["BEGIN IMMEDIATE"] >= 2, counted
    for begun, statement in enumerate(seen):
        if statement == "BEGIN IMMEDIATE":
            held = seen[begun + 1 : seen.index("COMMIT", begun)]
            assert held and not [s for s in held if s.startswith("SELECT")], held


def test_the_rebuild_command_summarises_a_range_and_refuses_bad_input(app, history):
    runner = app.test_cli_runner()
    today = history.date()
    start = today - timedelta(days=9)
    result = runner.invoke(args=["stats", "rebuild", "--from", start.isoformat()])
    assert result.exit_code == 0, result.output
    assert f"Summarised 10 day(s), {start} to {today}." in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StatsDay)) == 10
    for args, message in [
        (["--from", "2025-13-01"], "'2025-13-01' is not a date; write it as YYYY-MM-DD."),
        (["--from", "2025-03-10", "--to", "10/03/2025"], "'10/03/2025' is not a date"),
        (["--from", "2025-03-10", "--to", "2025-03-01"], "2025-03-10 is after 2025-03-01."),
        (["--from", today.isoformat(), "--to", (today + timedelta(days=1)).isoformat()], "has not come yet"),
        (["--from", "2000-01-01", "--to", "2025-01-01"], "days is more than 3660 at once."),
        ([], "Missing option '--from'"),
    ]:
        result = runner.invoke(args=["stats", "rebuild", *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_beat_runs_the_refresh_as_a_thin_task(app, history):
    entry = celery_settings(app.config)["beat_schedule"]["refresh-stats-summaries"]
    assert entry["schedule"] == timedelta(seconds=app.config["STATS_SUMMARY_SECONDS"])
    result = tasks.refresh_stats_summaries.run()
    assert result == {"changed": 0, "filled": stats_summary.FILL_DAYS_PER_RUN,
                      "written": 2 + stats_summary.FILL_DAYS_PER_RUN}  # fmt: skip

"""Pipeline statistics: the pure aggregation, the SVG charts, and the page over a chosen period."""

import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Lead, LeadEvent, Role
from leads.staff import charts, stats
from leads.staff.stats import Period
from leads.timeutil import utcnow
from tests.factories import AssignmentFactory, LeadFactory, ProviderFactory
from tests.staff_support import ago, signed_in_client

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 10, 12, tzinfo=UTC)


# Pure aggregation ----------------------------------------------------------------------------


def test_a_period_counts_whole_utc_days_inclusive():
    period = Period(date(2025, 3, 1), date(2025, 3, 31))
    assert period.days == 31
    assert period.start_at == datetime(2025, 3, 1, tzinfo=UTC)
    assert period.end_at == datetime(2025, 4, 1, tzinfo=UTC)
    assert Period.last_days(7, date(2025, 3, 10)) == Period(date(2025, 3, 4), date(2025, 3, 10))


def test_the_daily_series_has_every_day_with_zeros_where_nothing_came():
    period = Period(date(2025, 3, 1), date(2025, 3, 4))
    assert stats.daily_series(period, {date(2025, 3, 2): 5, date(2025, 2, 1): 9}) == [
        (date(2025, 3, 1), 0),
        (date(2025, 3, 2), 5),
        (date(2025, 3, 3), 0),
        (date(2025, 3, 4), 0),
    ]


def test_top_keeps_the_biggest_and_sums_the_rest():
    counter = Counter({"DE": 5, "NO": 5, "SE": 1, "GB": 2, "US": 1})
    assert stats.top(counter, n=2) == [("DE", 5), ("NO", 5), ("Other", 4)]
    assert stats.top(Counter()) == []


def test_median_and_rate_say_nothing_rather_than_divide_by_zero():
    assert stats.median_seconds([]) is None
    assert stats.median_seconds([30, 10, 20]) == 20
    assert stats.rate(0, 0) is None
    assert stats.rate(1, 4) == 0.25


def test_provider_stats_count_answers_and_take_the_median_response_time():
    counts = [
        (1, "A", "accepted", 1),
        (1, "A", "declined", 1),
        (1, "A", "expired", 1),
        (1, "A", "notified", 2),
        (2, "B", "accepted", 1),
    ]
    a, b = stats.provider_stats(counts, {1: [3600.0, 10800.0, 7200.0], 2: [7200.0], 99: [1.0]})
    assert (a.name, a.assignments, a.accepted, a.declined, a.expired, a.open) == ("A", 5, 1, 1, 1, 2)
    assert a.acceptance_rate == pytest.approx(1 / 3)
    assert a.median_response_seconds == 2 * 3600
    assert (b.name, b.acceptance_rate, b.median_response_seconds) == ("B", 1.0, 7200)


def test_a_provider_with_no_decided_assignment_has_no_rate_rather_than_zero():
    [only] = stats.provider_stats([(1, "A", "notified", 3)], {})
    assert only.acceptance_rate is None and only.median_response_seconds is None


def test_the_funnel_starts_with_every_lead_received():
    assert stats.funnel(10, {"routed": 8, "booked": 1}) == [
        ("received", 10),
        ("routed", 8),
        ("contacted", 0),
        ("quoted", 0),
        ("booked", 1),
    ]


# Charts --------------------------------------------------------------------------------------


def test_a_column_chart_is_valid_svg_named_and_described_for_screen_readers():
    svg = charts.column_chart(
        "c1", [("01 Mar", 3), ("02 Mar", 0), ("03 Mar", 7)], title="Leads", desc="10 leads"
    )
    root = ET.fromstring(str(svg))  # noqa: S314  (our own markup)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Leads" and root.find(f"{SVG}desc").text == "10 leads"
    bars = root.findall(f"{SVG}rect")
    heights = [float(bar.get("height")) for bar in bars]
    assert len(bars) == 3 and heights[1] == 0 and heights[2] > heights[0] > 0
    assert [bar.find(f"{SVG}title").text for bar in bars] == ["01 Mar: 3", "02 Mar: 0", "03 Mar: 7"]


def test_a_bar_chart_escapes_labels_and_survives_no_data():
    svg = charts.bar_chart("c2", [("<script>", 2), ("Aarhus & Co", 1)], title="T", desc="D")
    root = ET.fromstring(str(svg))  # noqa: S314  (our own markup)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>" in texts and "Aarhus & Co" in texts  # escaped in the markup, intact once parsed
    assert "<script>" not in str(svg)
    empty = ET.fromstring(str(charts.bar_chart("c3", [], title="Nothing", desc="No data")))  # noqa: S314
    assert empty.findall(f"{SVG}rect") == []


# The page ------------------------------------------------------------------------------------


@pytest.fixture
def pipeline(app, taxonomy):
    """Five leads this week, in different states, and one from long ago (outside the period)."""
    clinic = ProviderFactory(name="Aarhus Spine (demo)")
    received = ago(days=2)
    booked = LeadFactory(status="booked", country="NO", utm_source="magazine", created_at=received)
    for from_status, to_status in (("new", "routed"), ("routed", "contacted"), ("contacted", "quoted"),
                                   ("quoted", "booked")):  # fmt: skip
        db.session.add(
            LeadEvent(
                lead=booked,
                kind="status_changed",
                actor_type="system",
                from_status=from_status,
                to_status=to_status,
                created_at=ago(days=2) + timedelta(hours=1),
            )  # fmt: skip
        )
    AssignmentFactory(
        lead=booked, provider=clinic, status="accepted", created_at=received,
        responded_at=received + timedelta(hours=3),
    )  # fmt: skip
    LeadFactory(status="new", country="DE", created_at=ago(days=1), sla_due_at=ago(hours=2), full_name="new")
    LeadFactory(status="routed", country="DE", created_at=ago(hours=3), sla_due_at=ago(hours=-20))
    LeadFactory(status="spam", country="DE", utm_source="magazine", created_at=ago(days=3))
    LeadFactory(
        status="unroutable",
        country="SE",
        created_at=ago(days=4),
        sla_due_at=ago(days=3),
        full_name="unroutable",
    )
    LeadFactory(status="booked", country="US", created_at=ago(days=200))
    db.session.commit()
    return booked


def test_collect_sums_the_period_and_leaves_older_leads_out(pipeline):
    now = utcnow()
    new, unroutable = (
        db.session.scalar(sa.select(Lead).filter_by(full_name=n)) for n in ("new", "unroutable")
    )
    report = stats.collect(Period.last_days(30, now.date()), now)
    assert report.total == 5
    assert sum(count for _, count in report.per_day) == 5
    assert dict(report.funnel) == {"received": 5, "routed": 2, "contacted": 1, "quoted": 1, "booked": 1}
    assert dict(report.by_country) == {"DE": 3, "NO": 1, "SE": 1}
    assert dict(report.by_source) == {"(direct)": 3, "magazine": 2}
    [clinic] = report.providers
    assert (clinic.assignments, clinic.accepted, clinic.median_response_seconds) == (1, 1, 3 * 3600)
    # new: 2 h past due; unroutable: 3 days past due; routed: due in 20 h; booked: no SLA set
    assert (report.sla.with_sla, report.sla.breached, report.sla.waiting_past_due) == (3, 2, 2)
    assert [reference for _, reference, _ in report.sla.oldest_waiting] == [
        unroutable.reference,
        new.reference,
    ]


def test_the_stats_page_shows_charts_with_table_alternatives(app, pipeline):
    client, _ = signed_in_client(app, Role.COORDINATOR)
    response = client.get("/staff/stats")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count('role="img"') == 5  # per day, funnel, providers, sources, countries
    for title in (
        "Leads per day",
        "Funnel",
        "Assignments per provider",
        "Leads by source",
        "Leads by country",
    ):
        assert "<title id=" in html and title in html
    assert "<caption" in html and "Aarhus Spine (demo)" in html
    assert "SLA breaches" in html and pipeline.reference not in html  # booked lead met its SLA


def test_the_period_comes_from_the_url(app, pipeline):
    client, _ = signed_in_client(app)
    today = utcnow().date()
    start = (today - timedelta(days=1)).isoformat()
    html = client.get(f"/staff/stats?start={start}&end={today.isoformat()}").get_data(as_text=True)
    assert f"from {start} to {today.isoformat()} (2 days, UTC)" in html
    assert 'Leads <span class="value">2</span>' in html  # the two leads of the last two days


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2025-13-01", "Enter the date as YYYY-MM-DD"),
        ("start=2025-03-10&end=2025-03-01", "The end date must be on or after the start date"),
        ("start=2020-01-01&end=2025-01-01", "Choose a period of at most 366 days"),
    ],
)
def test_a_bad_period_gets_a_clear_message(app, pipeline, query, message):
    client, _ = signed_in_client(app)
    response = client.get(f"/staff/stats?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_a_lead_taken_in_hand_after_its_due_time_counts_as_a_breach(app, taxonomy):
    def lead_handled(after_due: timedelta | None):
        status = "contacted" if after_due is not None else "new"
        lead = LeadFactory(status=status, created_at=ago(days=2), sla_due_at=ago(days=1))
        if after_due is not None:
            handled_at = lead.sla_due_at + after_due
            event = LeadEvent(lead=lead, kind="status_changed", actor_type="provider", to_status="contacted")
            event.created_at = handled_at
            db.session.add(event)
        return lead

    lead_handled(timedelta(hours=-2))  # in time
    late = lead_handled(timedelta(hours=3))  # late, but in hand now
    waiting = lead_handled(None)  # still waiting, past due
    db.session.commit()
    now = utcnow()
    sla = stats.collect(Period.last_days(7, now.date()), now).sla
    assert (sla.with_sla, sla.breached, sla.waiting_past_due) == (3, 2, 1)
    assert [reference for _, reference, _ in sla.oldest_waiting] == [waiting.reference]
    assert late.reference not in [reference for _, reference, _ in sla.oldest_waiting]


def test_groups_fold_into_days_statuses_countries_and_sources():
    rows = [
        ("2025-03-01", "new", "DE", None, 2),
        (date(2025, 3, 1), "spam", "DE", "magazine", 1),
        ("2025-03-02", "new", "NO", "magazine", 4),
    ]
    per_day, by_status, by_country, by_source = stats.fold_groups(rows)
    assert per_day == {date(2025, 3, 1): 3, date(2025, 3, 2): 4}
    assert by_status == Counter({"new": 6, "spam": 1})
    assert by_country == Counter({"NO": 4, "DE": 3})
    assert by_source == Counter({"magazine": 5, "(direct)": 2})


def test_a_lead_that_reached_a_later_stage_counts_for_every_earlier_one():
    # furthest stage reached: 5 leads none, 3 routed, 2 contacted, 1 booked
    assert stats.reached_from_ranks(Counter({0: 5, 1: 3, 2: 2, 4: 1})) == {
        "routed": 6,
        "contacted": 3,
        "quoted": 1,
        "booked": 1,
    }

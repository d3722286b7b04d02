"""Pipeline statistics without a database: the pure aggregation and the SVG charts."""

import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from leads.staff import charts, stats
from leads.staff.stats import Period
from leads.staff.stats_figures import Figures

SVG = "{http://www.w3.org/2000/svg}"


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
    assert stats.top(counter, n=2) == [("DE", 5), ("NO", 5), (None, 4)]  # None: the rest, "Other"
    assert stats.top(Counter()) == []


def test_median_and_rate_say_nothing_rather_than_divide_by_zero():
    assert stats.median_seconds([]) is None
    assert stats.median_seconds([30, 10, 20]) == 20
    assert stats.rate(0, 0) is None
    assert stats.rate(1, 4) == 0.25


def test_provider_stats_count_answers_and_take_the_median_response_time():
    counts = [
        (1, "A", "accepted", True, 1),
        (1, "A", "declined", True, 1),
        (1, "A", "expired", False, 1),
        (1, "A", "notified", False, 2),
        (2, "B", "accepted", True, 1),
    ]
    a, b = stats.provider_stats(counts, {1: [3600.0, 10800.0, 7200.0], 2: [7200.0], 99: [1.0]})
    assert (a.name, a.assignments, a.accepted, a.declined, a.expired, a.open) == ("A", 5, 1, 1, 1, 2)
    assert a.acceptance_rate == pytest.approx(1 / 3)
    assert a.median_response_seconds == 2 * 3600
    assert (b.name, b.acceptance_rate, b.median_response_seconds) == ("B", 1.0, 7200)


def test_an_acceptance_the_patient_did_not_choose_still_counts_as_accepted():
    counts = [
        (1, "A", "not_chosen", True, 2),  # accepted, then the patient chose another clinic
        (1, "A", "not_chosen", False, 1),  # ended by the patient before any answer: not an answer
        (1, "A", "declined", True, 2),
    ]
    [a] = stats.provider_stats(counts, {})
    assert (a.assignments, a.accepted, a.declined, a.open) == (5, 2, 2, 0)
    assert a.acceptance_rate == pytest.approx(0.5)


def test_quote_figures_count_leads_quotes_speed_choices_and_each_provider():
    hour = 3600.0
    figures = Figures(
        leads_with_quote=3, quotes=6, chosen_leads=1, first_quote_seconds=[5 * hour, hour, 3 * hour]
    )
    figures.provider_quotes.update({1: 3, 2: 3, 3: 0})
    figures.provider_chosen.update({1: 1})
    quotes = stats.quote_stats(figures, {1: "A", 2: "B", 3: "C"})
    assert (quotes.leads_with_quote, quotes.quotes, quotes.chosen_leads) == (3, 6, 1)
    assert quotes.quotes_per_lead == 2.0 and quotes.chosen_share == pytest.approx(1 / 3)
    assert quotes.median_first_quote_seconds == 3 * hour
    assert [(p.name, p.quotes, p.chosen) for p in quotes.providers] == [("A", 3, 1), ("B", 3, 0), ("C", 0, 0)]


def test_without_quotes_the_quote_figures_are_empty_not_zero():
    quotes = stats.quote_stats(Figures(), {})
    assert quotes.quotes_per_lead is None and quotes.chosen_share is None
    assert quotes.median_first_quote_seconds is None and quotes.providers == []


def test_a_provider_with_no_decided_assignment_has_no_rate_rather_than_zero():
    [only] = stats.provider_stats([(1, "A", "notified", False, 3)], {})
    assert only.acceptance_rate is None and only.median_response_seconds is None


def test_the_funnel_starts_with_every_lead_received():
    assert stats.funnel(10, {"routed": 8, "booked": 1}) == [
        ("received", 10),
        ("routed", 8),
        ("contacted", 0),
        ("quoted", 0),
        ("chosen", 0),
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


def _day(day: date, *, due_max: datetime | None = None) -> Figures:
    figures = Figures(with_sla=3, breached=1, sla_open=1 if due_max else 0, open_due_max=due_max)
    figures.per_day[day] = 3
    figures.by_status.update({"new": 2, "spam": 1})
    figures.by_source.update({"(direct)": 3})
    figures.stage_ranks.update({0: 2, 3: 1})
    figures.assignments[(7, "accepted", True)] = 2
    figures.response_seconds[7] = [0.1 + 0.2, 3600.0]
    figures.first_quote_seconds = [1 / 3]
    figures.provider_quotes[7], figures.provider_chosen[7] = 2, 1
    return figures


def test_days_merge_into_one_set_of_figures_and_survive_json_exactly():
    monday, tuesday = date(2025, 3, 3), date(2025, 3, 4)
    week = Figures()
    week.add(_day(monday))
    week.add(Figures.from_json(json.loads(json.dumps(_day(tuesday).to_json()))))
    assert week.per_day == Counter({monday: 3, tuesday: 3}) and week.by_status == Counter(
        {"new": 4, "spam": 2}
    )
    assert week.stage_ranks == Counter({0: 4, 3: 2}) and week.assignments[(7, "accepted", True)] == 4
    assert (week.with_sla, week.breached) == (6, 2)
    assert sorted(week.response_seconds[7]) == [0.1 + 0.2, 0.1 + 0.2, 3600.0, 3600.0]  # floats bit for bit
    assert week.first_quote_seconds == [1 / 3, 1 / 3] and week.provider_chosen[7] == 2


def test_a_summary_with_a_deadline_still_running_is_settled_only_once_it_has_passed():
    due = datetime(2025, 3, 4, 12, tzinfo=UTC)
    running = Figures.from_json(_day(date(2025, 3, 3), due_max=due).to_json())
    assert running.open_due_max == due
    assert not running.settled(due) and running.settled(due + timedelta(microseconds=1))
    assert running.breaches() == 2
    assert _day(date(2025, 3, 3)).settled(due) and _day(date(2025, 3, 3)).breaches() == 1


def test_a_lead_that_reached_a_later_stage_counts_for_every_earlier_one():
    # furthest stage reached: 5 leads none, 3 routed, 2 contacted, 1 chosen, 1 booked
    assert stats.reached_from_ranks(Counter({0: 5, 1: 3, 2: 2, 4: 1, 5: 1})) == {
        "routed": 7,
        "contacted": 4,
        "quoted": 2,
        "chosen": 2,
        "booked": 1,
    }

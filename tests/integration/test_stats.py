"""Pipeline statistics over the database and the stats page (the pure parts are unit tests)."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Lead, LeadEvent, Quote, Role
from leads.staff import stats
from leads.staff.lead_actions import change_status
from leads.staff.stats import Period
from leads.timeutil import utcnow
from tests.factories import AssignmentFactory, LeadFactory, ProviderFactory, UserFactory
from tests.integration.test_quotes import patient, provider, quote_form, two_clinics_accept
from tests.staff_support import ago, marking_catalog, signed_in_client

# The stats queries group by day with SQL functions written per database.
pytestmark = pytest.mark.pg

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 10, 12, tzinfo=UTC)


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
    assert dict(report.funnel) == {
        "received": 5,
        "routed": 2,
        "contacted": 1,
        "quoted": 1,
        "chosen": 1,
        "booked": 1,
    }
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
    assert "May have arrived twice" in html


def test_leads_without_a_source_are_named_in_the_readers_language_and_linked_by_a_neutral_value(
    app, pipeline
):
    """The stats key "(direct)" is never shown: a Danish reader reads the catalog's words, and the
    link to those leads in the queue carries the queue's own value, the same in every language."""
    client, _ = signed_in_client(app, language="da")
    with marking_catalog(app):
        html = client.get("/staff/stats").get_data(as_text=True)
    section = html[html.index('id="sources-title"') : html.index('id="countries-title"')]
    assert "(direct)" not in section
    assert "⟦Direct (no utm_source)⟧: 3" in section  # the chart's description
    [link] = re.findall(r'<a href="([^"]*)">⟦Direct \(no utm_source\)⟧</a>', section)
    assert "source=(none)&" in link
    direct = db.session.scalar(sa.select(Lead.reference).filter_by(full_name="unroutable"))
    for url in (unescape(link), unescape(link).replace("(none)", "(direct)")):  # and old links
        queue = client.get(url).get_data(as_text=True)
        assert direct in queue and pipeline.reference not in queue  # the booked lead has a source


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
        ("end=0001-01-05", "Enter a date from 2000-01-01 to 2999-12-31"),  # 30 days back: before year 1
        ("start=9999-12-31", "Enter a date from 2000-01-01 to 2999-12-31"),  # its day after: year 10000
        ("start=1999-12-31&end=2000-01-01", "Enter a date from 2000-01-01 to 2999-12-31"),
    ],
)
def test_a_bad_period_gets_a_clear_message(app, pipeline, query, message):
    client, _ = signed_in_client(app)
    response = client.get(f"/staff/stats?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("end=2000-01-01", "from 1999-12-03 to 2000-01-01"),
        ("start=2999-12-31", "from 2999-12-31 to 2999-12-31"),
    ],
)
def test_the_first_and_last_dates_accepted_give_a_period(app, pipeline, query, shown):
    client, _ = signed_in_client(app)
    response = client.get(f"/staff/stats?{query}")
    assert response.status_code == 200
    assert shown in response.get_data(as_text=True)


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


# Quote figures -------------------------------------------------------------------------------


def test_quote_figures_and_an_acceptance_the_patient_did_not_choose(app, client, taxonomy):
    lead, first, second = two_clinics_accept(client)
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(first) + "/quote", data=quote_form(price_from="18000"))
    client.post(provider(second) + "/quote", data=quote_form())
    quote_id = db.session.scalar(sa.select(Quote.id).filter_by(assignment_id=second.id))
    client.post(f"{patient(lead)}/quotes/{quote_id}/choose", data={"revision": 1})
    LeadFactory(created_at=ago(days=1))  # no quote
    db.session.commit()
    now = utcnow()
    report = stats.collect(Period.last_days(7, now.date()), now)
    figures = report.quotes
    assert (figures.leads_with_quote, figures.quotes, figures.chosen_leads) == (1, 2, 1)
    assert figures.quotes_per_lead == 2.0 and figures.chosen_share == 1.0
    assert 0 <= figures.median_first_quote_seconds < 3600
    assert {(p.name, p.quotes, p.chosen) for p in figures.providers} == {
        (first.provider.name, 1, 0),
        (second.provider.name, 1, 1),
    }
    # The first clinic accepted, then was not chosen: still an acceptance.
    not_chosen = next(p for p in report.providers if p.provider_id == first.provider_id)
    assert (not_chosen.accepted, not_chosen.acceptance_rate) == (1, 1.0)
    assert dict(report.funnel)["chosen"] == 1 and dict(report.funnel)["booked"] == 0

    coordinator, _ = signed_in_client(app)
    html = coordinator.get("/staff/stats").get_data(as_text=True)
    section = html[html.index('id="quotes-title"') : html.index('id="sources-title"')]
    assert 'Leads with at least one quote</th><td class="num">1<' in section
    assert 'Quotes per lead with a quote</th><td class="num">2.0<' in section
    assert "(100%)" in section and second.provider.name in section
    # As a Danish reader writes them: a decimal comma, a space before the per cent sign.
    danish, _ = signed_in_client(app, language="da")
    html = danish.get("/staff/stats").get_data(as_text=True)
    section = html[html.index('id="quotes-title"') : html.index('id="sources-title"')]
    assert '<td class="num">2,0<' in section and "(100\xa0%)" in section


def test_a_choice_a_coordinator_ended_still_counts_as_chosen_and_as_an_acceptance(app, client, taxonomy):
    lead, first, _ = two_clinics_accept(client)
    client.post(provider(first) + "/quote", data=quote_form())
    quote_id = db.session.scalar(sa.select(Quote.id).filter_by(assignment_id=first.id))
    client.post(f"{patient(lead)}/quotes/{quote_id}/choose", data={"revision": 1})
    coordinator = UserFactory()
    db.session.commit()
    change_status(lead.id, coordinator.id, "closed_lost", note="The clinic cannot treat after all.")
    db.session.commit()
    assert db.session.get(Quote, quote_id).status == "choice_ended"

    now = utcnow()
    report = stats.collect(Period.last_days(7, now.date()), now)
    assert (report.quotes.chosen_leads, report.quotes.chosen_share) == (1, 1.0)
    assert {(p.name, p.chosen) for p in report.quotes.providers} == {(first.provider.name, 1)}
    ended = next(p for p in report.providers if p.provider_id == first.provider_id)
    assert (ended.accepted, ended.acceptance_rate) == (1, 1.0)

"""The coordinator queue: urgency order, every filter, search, keyset pagination (with a
property test against a plain sort) and filters that live in the URL."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.extensions import db
from leads.models import Lead, LeadEvent, Role
from leads.staff import queue, search, stats
from leads.staff.queue import Cursor, QueueFilters
from leads.timeutil import utcnow
from tests.factories import (
    AssignmentFactory,
    ConditionFactory,
    LeadFactory,
    ProviderFactory,
    TreatmentFactory,
)
from tests.helpers import query_plan, statements_sent
from tests.staff_support import ago, ahead, make_staff, signed_in_client

# Queue ordering, keyset paging and search lean on SQL functions that differ on PostgreSQL.
pytestmark = pytest.mark.pg


def names(page) -> list[str]:
    return [row.lead.full_name for row in page.rows]


def fetch_all(filters: QueueFilters, limit: int = 500) -> list[str]:
    return names(queue.fetch_page(filters, limit=limit))


@pytest.fixture
def ward(app, taxonomy):
    """A small, varied set of leads, each named for what makes it findable."""
    me = make_staff(email="me@example.dk")
    colleague = make_staff(email="colleague@example.dk")
    other_treatment = TreatmentFactory(name="Orthopaedic stem cells")
    other_condition = ConditionFactory(name="Knee")
    clinic = ProviderFactory(name="Aarhus Spine (demo)")
    leads = {
        "unroutable-old": LeadFactory(
            full_name="unroutable-old", status="unroutable", created_at=ago(days=5)
        ),
        "unroutable-new": LeadFactory(
            full_name="unroutable-new", status="unroutable", created_at=ago(days=1)
        ),
        "review": LeadFactory(full_name="review", status="needs_review", created_at=ago(days=2)),
        "overdue-most": LeadFactory(
            full_name="overdue-most", status="new", created_at=ago(days=3), sla_due_at=ago(days=2)
        ),
        "overdue-routed": LeadFactory(
            full_name="overdue-routed", status="routed", created_at=ago(hours=30), sla_due_at=ago(hours=6)
        ),
        "fresh": LeadFactory(
            full_name="fresh", status="new", created_at=ago(minutes=5), sla_due_at=ahead(hours=23),
            country="NO", utm_source="magazine", assigned_to=me,
        ),
        "contacted-late": LeadFactory(
            full_name="contacted-late", status="contacted", created_at=ago(days=4), sla_due_at=ago(days=3),
            treatment=other_treatment, condition=other_condition, assigned_to=colleague,
        ),
        "booked": LeadFactory(
            full_name="booked", status="booked", created_at=ago(hours=1), email="Booked.Person@Example.org",
            phone="+4520123456", utm_source="google",
        ),
        "spam": LeadFactory(full_name="spam", status="spam", created_at=ago(days=10), country="NO"),
    }  # fmt: skip
    AssignmentFactory(lead=leads["contacted-late"], provider=clinic)
    AssignmentFactory(lead=leads["booked"], provider=clinic)
    db.session.commit()
    return {"leads": leads, "me": me, "colleague": colleague, "treatment": other_treatment,
            "condition": other_condition, "clinic": clinic}  # fmt: skip


def test_the_queue_puts_unroutable_then_review_then_overdue_then_newest_first(ward):
    assert fetch_all(QueueFilters()) == [
        "unroutable-old",  # oldest unroutable has waited longest
        "unroutable-new",
        "review",
        "overdue-most",  # most overdue first
        "overdue-routed",
        "fresh",  # then everything else, newest first
        "booked",
        "contacted-late",  # its SLA passed, but a provider has it in hand: not overdue
        "spam",
    ]


@pytest.mark.parametrize(
    ("make_filters", "expected"),
    [
        (lambda w: QueueFilters(status="new"), {"overdue-most", "fresh"}),
        (
            lambda w: QueueFilters(status="open"),
            {"unroutable-old", "unroutable-new", "review", "overdue-most", "overdue-routed", "fresh",
             "contacted-late"},
        ),
        (lambda w: QueueFilters(treatment_id=w["treatment"].id), {"contacted-late"}),
        (lambda w: QueueFilters(condition_id=w["condition"].id), {"contacted-late"}),
        (lambda w: QueueFilters(provider_id=w["clinic"].id), {"contacted-late", "booked"}),
        (lambda w: QueueFilters(country="no"), {"fresh", "spam"}),
        (lambda w: QueueFilters(source="magazine"), {"fresh"}),
        (
            lambda w: QueueFilters(source="(none)"),
            {"unroutable-old", "unroutable-new", "review", "overdue-most", "overdue-routed",
             "contacted-late", "spam"},
        ),
        (  # as the stats page names them
            lambda w: QueueFilters(source="(direct)"),
            {"unroutable-old", "unroutable-new", "review", "overdue-most", "overdue-routed",
             "contacted-late", "spam"},
        ),
        (lambda w: QueueFilters(assigned="mine", user_id=w["me"].id), {"fresh"}),
        (lambda w: QueueFilters(assigned=str(w["colleague"].id)), {"contacted-late"}),
        (lambda w: QueueFilters(assigned="unassigned", status="booked"), {"booked"}),
        (lambda w: QueueFilters(overdue=True), {"overdue-most", "overdue-routed"}),
        (
            lambda w: QueueFilters(created_from=(utcnow() - timedelta(days=2)).date()),
            {"unroutable-new", "review", "overdue-routed", "fresh", "booked"},
        ),
        (
            lambda w: QueueFilters(created_to=(utcnow() - timedelta(days=4)).date()),
            {"unroutable-old", "contacted-late", "spam"},
        ),
        (lambda w: QueueFilters(country="NO", status="spam"), {"spam"}),
    ],
    ids=["status", "open", "treatment", "condition", "provider", "country", "source", "no-source",
         "no-source-as-stats-names-it", "mine", "colleague", "unassigned", "overdue", "from", "to",
         "combined"],
)  # fmt: skip
def test_each_filter_returns_exactly_the_matching_leads(ward, make_filters, expected):
    found = fetch_all(make_filters(ward))
    assert set(found) == expected
    assert len(found) == len(expected)


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("booked.person@example.org", {"booked"}),  # whole address, any case
        ("Booked.Person@", {"booked"}),  # part of an address
        ("+45 20 12 34 56", {"booked"}),  # international format, spaced
        ("0045 20123456", {"booked"}),
        ("20 12 34 56", {"booked"}),  # the local number alone
        ("overdue", {"overdue-most", "overdue-routed"}),  # part of a name
        ("UNROUTABLE-OLD", {"unroutable-old"}),  # name, any case
        ("nobody-by-this-name", set()),
        ("100%_", set()),  # wildcards are literal characters
    ],
)
def test_search_finds_leads_by_email_phone_or_name(ward, search, expected):
    assert set(fetch_all(QueueFilters(q=search))) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "ØRSTED@example.org",
        "Ørsted@Example.ORG",
        "ØRSTED@EXAMPLE.ORG",
        "ørsted@example.org",
        "ørsted@",
        "Ørsted@EX",
    ],
)
def test_search_by_an_address_with_letters_beyond_a_to_z_finds_every_request_in_any_case(
    app, taxonomy, typed
):
    """By the stored keys (`email_key`), a whole address or part of one: the database's lower()
    changes A to Z only (SQLite's)."""
    for name, email in (("upper", "ØRSTED@example.org"), ("mixed", "øRSTED@EXAMPLE.org")):
        LeadFactory(full_name=name, email=email)
    LeadFactory(full_name="other", email="orsted@example.org")
    assert sorted(fetch_all(QueueFilters(q=typed))) == ["mixed", "upper"]


def test_a_search_by_email_is_served_by_the_email_key_index(app, taxonomy):
    LeadFactory(email="ØRSTED@example.org")
    with statements_sent("SELECT lead.id") as seen:
        search.search_condition("Ørsted@EXAMPLE.org")
    [(statement, parameters)] = seen  # one look-up of the matching leads
    assert "ix_lead_email_key" in query_plan(statement, parameters)


def test_search_finds_a_lead_by_its_reference_with_or_without_prefix(ward):
    lead = ward["leads"]["review"]
    code = lead.reference[2:]
    assert fetch_all(QueueFilters(q=lead.reference)) == ["review"]
    assert fetch_all(QueueFilters(q=lead.reference.lower())) == ["review"]
    if any(ch.isdigit() for ch in code):
        assert fetch_all(QueueFilters(q=code)) == ["review"]


@pytest.mark.parametrize("typed", ["Q-QK3M9P", "q-qk3m9p", "QQK3M9P", "QK3M9P", "qk3 m9p"])
def test_search_reads_a_leading_q_as_the_code_when_the_code_starts_with_q(ward, typed):
    ward["leads"]["review"].reference = "Q-QK3M9P"  # Q is a code letter as well as the prefix
    db.session.flush()
    assert fetch_all(QueueFilters(q=typed)) == ["review"]


def test_paging_forward_and_back_visits_every_lead_once_in_order(ward):
    everything = fetch_all(QueueFilters())
    seen, pages, cursor = [], [], None
    while True:
        page = queue.fetch_page(QueueFilters(), limit=2, after=cursor)
        pages.append(names(page))
        seen += names(page)
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor)
    assert seen == everything
    assert all(len(p) == 2 for p in pages[:-1])
    # ...and back again from the last page with "previous"
    back = [names(page)]
    while page.prev_cursor:
        page = queue.fetch_page(QueueFilters(), limit=2, before=Cursor.decode(page.prev_cursor))
        back.append(names(page))
    assert back == pages[::-1]


def test_counts_stop_at_the_ceiling(ward):
    assert queue.bounded_count([], ceiling=3) == 3
    assert queue.bounded_count([Lead.status == "spam"], ceiling=3) == 1


def test_the_attention_counts_match_the_segments(ward):
    counts = queue.attention_counts(ward["me"].id)
    assert counts == {
        "unroutable": 2, "needs_review": 1, "overdue": 2, "mine": 1, "erasure": 0, "left_by_erasure": 0,
    }  # fmt: skip


STATUSES = ["new", "routed", "unroutable", "needs_review", "contacted", "booked", "spam"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    leads=st.lists(
        st.tuples(
            st.sampled_from(STATUSES),
            st.integers(min_value=0, max_value=20),  # created, hours ago (ties on purpose)
            st.one_of(st.none(), st.integers(min_value=-30, max_value=30)),  # SLA due, hours from now
            st.booleans(),  # taken in hand once (its SLA clock stopped), whatever its status now
        ),
        max_size=14,
    ),
    page_size=st.integers(min_value=1, max_value=5),
)
def test_pages_always_equal_one_plain_sort_of_the_queue(app, taxonomy, leads, page_size):
    db.session.execute(sa.delete(LeadEvent))
    db.session.execute(sa.delete(Lead))
    now = utcnow()
    base = now.replace(microsecond=0)
    made = [
        LeadFactory(
            status=status,
            created_at=base - timedelta(hours=hours),
            sla_due_at=None if due is None else base + timedelta(hours=due, minutes=1),
        )
        for status, hours, due, _ in leads
    ]
    handled = {
        lead.id for lead, (*_, taken) in zip(made, leads, strict=True) if taken and _taken_in_hand(lead)
    }
    db.session.commit()

    def key(lead):
        overdue = (
            lead.status in ("new", "routed")
            and lead.sla_due_at is not None
            and lead.sla_due_at < now
            and lead.id not in handled
        )
        if lead.status == "unroutable":
            return (0, lead.created_at.timestamp(), lead.id)
        if lead.status == "needs_review":
            return (1, lead.created_at.timestamp(), lead.id)
        if overdue:
            return (2, lead.sla_due_at.timestamp(), lead.id)
        return (3, -lead.created_at.timestamp(), -lead.id)

    expected = [lead.id for lead in sorted(made, key=key)]
    seen, cursor = [], None
    for _ in range(len(made) + 2):
        page = queue.fetch_page(QueueFilters(), limit=page_size, after=cursor, now=now)
        seen += [row.lead.id for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor)
    assert seen == expected


# Through the page ----------------------------------------------------------------------------


def test_filters_survive_a_reload_through_the_url(app, ward):
    client, _ = signed_in_client(app)
    app.config["STAFF_PAGE_SIZE"] = 1
    searched = client.post("/staff/leads", data={"status": "new", "country": "NO", "q": "fresh"})
    url = searched.headers["Location"]
    assert "fresh" not in url and "search=" in url  # the term stays out of the URL
    first = client.get(url).get_data(as_text=True)
    again = client.get(url).get_data(as_text=True)
    for html in (first, again):
        assert '<option selected value="new">' in html
        assert '<option selected value="NO">' in html
        assert 'value="fresh"' in html
        assert ">fresh</bdi>" in html


def test_page_links_keep_the_filters(app, ward):
    client, _ = signed_in_client(app)
    app.config["STAFF_PAGE_SIZE"] = 1
    html = client.get("/staff/leads?status=unroutable").get_data(as_text=True)
    assert ">unroutable-old</bdi>" in html and ">unroutable-new</bdi>" not in html
    next_link = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert "status=unroutable" in next_link and "after=" in next_link
    second = client.get(next_link).get_data(as_text=True)
    assert ">unroutable-new</bdi>" in second and ">unroutable-old</bdi>" not in second
    assert 'rel="prev"' in second


def _title(html: str) -> str:
    return html.split("<title>", 1)[1].split("</title>", 1)[0]


def test_after_a_search_the_page_title_leads_with_the_result_count(app, ward):
    """A screen reader reads the title as the page opens; the status line present at load is not
    announced, so the count goes in the title after a search or a filter."""
    client, _ = signed_in_client(app)
    assert _title(client.get("/staff/leads").get_data(as_text=True)).startswith("Lead queue")
    found = client.post("/staff/leads", data={"status": "unroutable"}, follow_redirects=True)
    assert _title(found.get_data(as_text=True)).startswith("Leads that match: 2 – Lead queue")
    none = client.post("/staff/leads", data={"q": "nobody-by-this-name"}, follow_redirects=True)
    assert _title(none.get_data(as_text=True)).startswith("No leads match. – Lead queue")


def test_bad_filters_get_a_clear_message_and_no_list(app, ward):
    client, _ = signed_in_client(app)
    response = client.get("/staff/leads?created_from=31-12-2024&status=bogus&provider=999999")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Some filters need fixing" in html
    assert "Enter the date as YYYY-MM-DD" in html
    assert "Choose a status from the list" in html
    assert "Choose a provider from the list" in html
    assert "unroutable-old" not in html


def test_the_end_date_cannot_come_before_the_start(app, ward):
    client, _ = signed_in_client(app)
    html = client.get("/staff/leads?created_from=2025-02-01&created_to=2025-01-01").get_data(as_text=True)
    assert "The end date must be on or after the start date" in html


@pytest.mark.parametrize(
    "link",
    [
        "after=not-a-cursor",
        "after=0.9999999999999999999.1",  # a moment after the year 9999
        "after=0.-9999999999999999999.1",  # before the year 1
        "after=3.0.9999999999999999999",  # a lead id beyond a 64-bit integer
        "before=3.0.9999999999999999999",
        "after=3.0.2147483648",  # beyond PostgreSQL's INTEGER id column (a 500 there before)
        "before=3.0.2147483648",
    ],
)
def test_a_broken_page_link_falls_back_to_the_first_page(app, ward, link):
    client, _ = signed_in_client(app)
    response = client.get(f"/staff/leads?{link}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "That page link was not valid" in html
    assert ">unroutable-old</bdi>" in html


@pytest.mark.parametrize(
    "dates", ["created_to=9999-12-31", "created_from=0001-01-01", "created_to=3000-01-01"]
)
def test_a_date_out_of_range_gets_a_clear_message_and_no_list(app, ward, dates):
    client, _ = signed_in_client(app)
    response = client.get(f"/staff/leads?{dates}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter a date from 2000-01-01 to 2999-12-31" in html
    assert "unroutable-old" not in html


def test_the_last_date_accepted_lists_the_leads(app, ward):
    client, _ = signed_in_client(app)
    html = client.get("/staff/leads?created_from=2000-01-01&created_to=2999-12-31").get_data(as_text=True)
    assert "Some filters need fixing" not in html and ">unroutable-old</bdi>" in html


def test_a_control_character_in_the_search_or_source_gets_a_clear_message(app, ward):
    client, _ = signed_in_client(app)
    searched = client.post("/staff/leads", data={"q": "fre\x00sh"})
    by_source = client.get("/staff/leads?source=mag%00azine")
    for response in (client.get(searched.headers["Location"]), by_source):
        html = response.get_data(as_text=True)
        assert response.status_code == 200  # PostgreSQL refuses NUL: never sent to it
        assert "Remove the invisible control characters" in html
        assert "unroutable-old" not in html


def test_the_queue_shows_urgency_and_the_needs_attention_numbers(app, ward):
    client, _ = signed_in_client(app, Role.COORDINATOR)
    html = client.get("/staff/leads").get_data(as_text=True)
    assert "Unroutable: 2" in html and "Needs review: 1" in html and "SLA overdue: 2" in html
    assert html.index(">unroutable-old</bdi>") < html.index(">review</bdi>") < html.index(">fresh</bdi>")
    assert "Overdue 2 days" in html  # overdue-most is two days past due
    assert "Export this list" not in html  # coordinators do not export


def test_a_danish_coordinator_reads_how_long_overdue_in_danish_units(app, ward):
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    html = client.get("/staff/leads").get_data(as_text=True)
    assert "Overskredet med 2 dage" in html and "2 d<" not in html


@pytest.mark.pg_only
@pytest.mark.parametrize(
    ("text", "index"),
    [("rsted", "ix_lead_full_name_trgm"), ("2345678", "ix_lead_phone_trgm")],
    ids=["part of a name", "end of a phone number"],
)
def test_on_postgresql_a_search_by_part_of_a_name_or_number_is_served_by_a_trigram_index(app, text, index):
    with statements_sent("SELECT lead.id") as seen:
        search.search_condition(text)
    statement, parameters = seen[-1]  # the search's own look-up of the matching leads
    plan = query_plan(statement, parameters)
    assert index in plan, plan


# The SLA clock stops for good once a lead is taken in hand -----------------------------------


def _taken_in_hand(lead, *, at=None):
    """A history that took the lead in hand once (a clinic's acceptance moves it to contacted)."""
    event = lead.add_event("status_changed", actor_type="system", from_status="routed", to_status="contacted")
    if at is not None:
        event.created_at = at
    return lead


def test_a_lead_taken_in_hand_once_is_never_sla_overdue_again(app, taxonomy):
    """The patient's "none of these suit me" puts a quoted lead back in unroutable, a coordinator
    sends a contacted one back to routed: their SLA was met or missed back then. The queue's overdue
    segment and filter, its count, the lead page's badge and the stats' leads still waiting past due
    all leave them out, as the stats' breaches already did."""
    waiting = LeadFactory(
        full_name="waiting", status="routed", created_at=ago(days=3), sla_due_at=ago(days=2)
    )
    back_in_triage = _taken_in_hand(
        LeadFactory(full_name="back", status="routed", created_at=ago(days=3), sla_due_at=ago(days=2))
    )
    none_suited = _taken_in_hand(
        LeadFactory(
            full_name="none-suited", status="unroutable", created_at=ago(days=9), sla_due_at=ago(days=8)
        )
    )
    db.session.commit()

    assert fetch_all(QueueFilters(overdue=True)) == ["waiting"]
    assert queue.attention_counts(user_id=0)["overdue"] == 1
    segments = {row.lead.full_name: row.segment for row in queue.fetch_page(QueueFilters(), limit=10).rows}
    assert segments == {"none-suited": queue.UNROUTABLE, "waiting": queue.OVERDUE, "back": queue.REST}
    report = stats.collect(stats.Period.last_days(30, utcnow().date()), utcnow())
    assert report.sla.waiting_past_due == 1
    assert [reference for _, reference, _ in report.sla.oldest_waiting] == [waiting.reference]

    client, _ = signed_in_client(app)
    for lead, overdue in ((waiting, True), (back_in_triage, False), (none_suited, False)):
        html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
        assert ('badge-urgent">SLA overdue' in html) is overdue, lead.full_name
    html = client.get("/staff/leads").get_data(as_text=True)
    assert "SLA overdue: 1" in html

"""A coordinator's day in a real browser: sign in, find a new lead through search, open it, add
a note, change its status and see both in the timeline; axe-core finds no WCAG 2.2 AA problem
on the queue, the lead page and the stats page; the stats page is saved as a screenshot."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from leads.extensions import db
from leads.models import AccessLog, Consent, Lead, LeadEvent, Role
from tests.e2e.conftest import axe_violations, screenshot, sign_in_staff
from tests.factories import AssignmentFactory, EmailMessageFactory, LeadFactory, ProviderFactory
from tests.staff_support import ago, make_staff

pytestmark = pytest.mark.e2e


@pytest.fixture
def busy_queue(app, taxonomy):
    """A realistic morning: urgent leads, a routed one with providers and a failed email, and
    the new request the coordinator is looking for."""
    make_staff(Role.COORDINATOR, email="coordinator@example.dk")
    LeadFactory(full_name="Lars Unroutable", status="unroutable", created_at=ago(days=2),
                status_reason="No provider offers this treatment for ALS")  # fmt: skip
    LeadFactory(full_name="Mona Review", status="needs_review", created_at=ago(hours=20))
    LeadFactory(full_name="Olav Overdue", status="new", created_at=ago(days=2), sla_due_at=ago(days=1))
    routed = LeadFactory(
        full_name="Petra Routed", status="routed", created_at=ago(hours=5), utm_source="magazine"
    )
    clinic = ProviderFactory(name="Aarhus Spine (demo)")
    AssignmentFactory(lead=routed, provider=clinic, status="viewed", viewed_at=ago(hours=4))
    EmailMessageFactory(lead_id=routed.id, status="failed", last_error="550 5.1.1 No such user")
    target = LeadFactory(full_name="Ingrid Sørensen", email="ingrid@example.no", country="NO",
                         created_at=ago(minutes=30), sla_due_at=ago(minutes=30) + timedelta(hours=24),
                         details="C5 incomplete injury in 2021. I use a wheelchair.")  # fmt: skip
    db.session.add(Consent(lead=target, text_version="2025-01", share_with_providers=True, contact=True,
                           source_form="quote"))  # fmt: skip
    db.session.commit()
    facts = {"target_id": target.id, "target_ref": target.reference, "routed_ref": routed.reference}
    db.session.rollback()  # hold no SQLite lock: the live server writes while the browser works
    return facts


def test_a_coordinator_finds_a_new_lead_adds_a_note_and_changes_its_status(staff_server, page, busy_queue):
    target_id, reference = busy_queue["target_id"], busy_queue["target_ref"]
    sign_in_staff(page, staff_server, "coordinator@example.dk")

    # The queue: urgent leads first, no accessibility violations.
    rows = page.locator("table.queue-table tbody tr")
    assert "Lars Unroutable" in rows.nth(0).inner_text()
    assert "Mona Review" in rows.nth(1).inner_text()
    assert "Olav Overdue" in rows.nth(2).inner_text()
    assert axe_violations(page) == []

    # Search by name, with the keyboard shortcut to the search box.
    page.locator("body").press("/")
    page.keyboard.type("sørensen")
    page.keyboard.press("Enter")
    page.wait_for_url("**search=**")
    assert rows.count() == 1 and "Ingrid Sørensen" in rows.first.inner_text()
    page.get_by_role("link", name=reference).click()
    page.wait_for_url(f"**/staff/leads/{target_id}**")
    assert page.get_by_role("heading", name=f"Request {reference}").is_visible()
    assert "C5 incomplete injury in 2021." in page.locator(".details-text").inner_text()
    assert axe_violations(page) == []

    # A note, then a status change, both in the timeline.
    page.get_by_label("Add a note").fill("Called Ingrid; she prefers email in English.")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator("#timeline #result")).to_contain_text("Note added.")
    expect(page.locator("#result")).to_be_focused()
    page.get_by_label("New status").select_option("closed_lost")
    page.get_by_label("Note on the status change (optional)").fill("Chose a clinic at home")
    page.get_by_role("button", name="Change status").click()
    expect(page.locator("#timeline #result")).to_contain_text("Status changed to Closed lost.")
    timeline = page.locator("#timeline").inner_text()
    assert "Called Ingrid; she prefers email in English." in timeline
    assert "New → Closed lost" in timeline and "Chose a clinic at home" in timeline
    assert "Back to the queue" in page.content()

    lead = db.session.get(Lead, target_id)
    kinds = [e.kind for e in db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id))]
    views = db.session.scalar(
        sa.select(sa.func.count(AccessLog.id)).filter_by(lead_id=lead.id, action="view")
    )
    status = lead.status
    db.session.rollback()  # end the read: the live server writes to the same SQLite file
    assert status == "closed_lost" and kinds == ["note", "status_changed"]
    assert views == 3  # opened, and shown again after each action


def test_an_illegal_status_change_from_a_stale_tab_shows_a_clear_message(staff_server, page, busy_queue):
    target_id = busy_queue["target_id"]
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.goto(f"{staff_server.url}/staff/leads/{target_id}")
    lead = db.session.get(Lead, target_id)
    lead.change_status("spam", actor_type="staff", note="a colleague in another tab")
    db.session.commit()
    db.session.rollback()
    page.get_by_label("New status").select_option("needs_review")
    page.get_by_role("button", name="Change status").click()
    alert = page.get_by_role("alert")
    assert "changed to 'Spam' while you were looking" in alert.inner_text()
    expect(alert).to_be_focused()  # read first by a screen reader
    assert axe_violations(page) == []


def test_a_keyboard_user_skips_the_tables_to_the_lead_pages_actions(staff_server, page, busy_queue):
    """The second Tab from the top shows "Go to the actions"; Enter puts focus on them, so the
    next Tab reaches the first action's form rather than the providers' and emails' tables."""
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.goto(f"{staff_server.url}/staff/leads/{busy_queue['target_id']}")
    skip = page.get_by_role("link", name="Go to the actions")
    expect(skip).not_to_be_in_viewport()  # out of sight until focused
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # shown while focused, as the site's own skip link
    page.keyboard.press("Enter")
    expect(page.get_by_role("region", name="Actions")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Add a note")).to_be_focused()


def test_the_stats_page_is_accessible_and_saved_as_a_screenshot(staff_server, page, busy_queue):
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.goto(staff_server.url + "/staff/stats")
    assert page.get_by_role("heading", name="Pipeline stats").is_visible()
    assert page.locator("svg[role=img]").count() == 5
    assert page.get_by_role("img", name="Leads per day").is_visible()
    assert axe_violations(page) == []
    path = screenshot(page, "stats")
    assert path.exists() and path.stat().st_size > 10_000


def test_the_queue_and_lead_page_work_on_a_phone(staff_server, phone_page, busy_queue):
    sign_in_staff(phone_page, staff_server, "coordinator@example.dk")
    assert axe_violations(phone_page) == []
    phone_page.get_by_role("link", name=busy_queue["routed_ref"]).click()
    assert phone_page.get_by_role("heading", name="Emails").is_visible()
    assert "550 5.1.1 No such user" in phone_page.locator("#emails").inner_text()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360  # nothing forces sideways scrolling of the whole page
    assert axe_violations(phone_page) == []


def test_after_acting_on_a_lead_the_coordinator_is_back_to_the_filtered_queue(staff_server, page, busy_queue):
    """Filters and the page of the queue survive a note on a lead: "Back to the queue" returns there."""
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.get_by_text("More filters").click()
    page.get_by_label("Country").select_option("NO")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**country=NO**")
    page.get_by_role("link", name=busy_queue["target_ref"]).click()
    page.get_by_label("Add a note").fill("Left a voicemail.")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator("#result")).to_be_focused()
    page.get_by_role("link", name="Back to the queue").click()
    page.wait_for_url("**/staff/leads?country=NO")
    expect(page.get_by_label("Country")).to_have_value("NO")
    assert page.locator("table.queue-table tbody tr").count() == 1


def test_a_patients_arabic_words_read_right_to_left_on_the_staff_pages(staff_server, page, taxonomy):
    """Patients write in Arabic too: their name and details keep their own direction on the
    English pages (the full stop ends the sentence on the left, the paragraph starts on the right)."""
    make_staff(Role.COORDINATOR, email="coordinator@example.dk")
    lead = LeadFactory(full_name="محمد العلي", details="أستخدم كرسيًا متحركًا منذ 2019.")
    db.session.commit()
    reference = lead.reference
    db.session.rollback()  # hold no SQLite lock while the live server works
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    direction = "el => getComputedStyle(el).direction"
    assert page.get_by_text("محمد العلي").evaluate(direction) == "rtl"
    page.get_by_role("link", name=reference).click()
    assert page.locator(".details-text").evaluate(direction) == "rtl"
    assert page.locator("dd", has_text="محمد العلي").evaluate(direction) == "rtl"
    assert page.get_by_role("heading", level=1).evaluate(direction) == "ltr"  # the page stays English

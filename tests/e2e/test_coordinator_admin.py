"""The rest of the dashboard in a real browser with CSRF on: taking a lead, resending a failed
email, and the admin's staff, export, access-log and erasure pages, each free of WCAG 2.2 AA
problems."""

import sqlalchemy as sa
from playwright.sync_api import expect

from leads.extensions import db
from leads.models import AccessLog, EmailMessage, Lead, Role, User
from tests.e2e.conftest import axe_violations, sign_in_staff
from tests.factories import EmailMessageFactory, LeadFactory
from tests.staff_support import make_staff


def _setup():
    make_staff(Role.ADMIN, email="admin@example.dk")
    make_staff(Role.COORDINATOR, email="coordinator@example.dk")
    lead = LeadFactory(full_name="Petra Routed", status="routed")
    failed = EmailMessageFactory(lead_id=lead.id, status="failed", last_error="550 5.1.1 No such user")
    db.session.commit()
    facts = {"lead_id": lead.id, "reference": lead.reference, "email_id": failed.id}
    db.session.rollback()  # hold no SQLite lock while the live server works
    return facts


def test_a_coordinator_takes_a_lead_and_sends_a_failed_email_again(staff_server, page, taxonomy):
    facts = _setup()
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.goto(f"{staff_server.url}/staff/leads/{facts['lead_id']}")
    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_role("status")).to_contain_text("Assigned to coordinator@example.dk.")
    page.get_by_role("button", name="Send again").click()
    expect(page.get_by_role("status")).to_contain_text("is queued again")
    assert page.get_by_role("button", name="Send again").count() == 0  # once is enough
    lead = db.session.get(Lead, facts["lead_id"])
    assignee = db.session.get(User, lead.assigned_to_id).email
    emails = db.session.scalar(sa.select(sa.func.count(EmailMessage.id)).filter_by(lead_id=lead.id))
    db.session.rollback()
    assert assignee == "coordinator@example.dk" and emails == 2


def test_an_admin_adds_a_colleague_and_reads_the_access_log(staff_server, page, taxonomy):
    facts = _setup()
    sign_in_staff(page, staff_server, "admin@example.dk")
    page.goto(f"{staff_server.url}/staff/leads/{facts['lead_id']}")  # one view to find in the log

    page.goto(staff_server.url + "/staff/admin/users")
    assert axe_violations(page) == []
    page.get_by_label("Email address").fill("not an address")
    page.get_by_label("Temporary password", exact=True).fill("short")
    page.get_by_role("button", name="Add staff member").click()
    summary = page.get_by_role("alert")
    assert "at least 12 characters" in summary.inner_text()
    assert axe_violations(page) == []
    page.get_by_label("Email address").fill("new.colleague@example.dk")
    page.get_by_label("Temporary password", exact=True).fill("a long temporary passphrase")
    page.get_by_role("button", name="Add staff member").click()
    assert "Created coordinator new.colleague@example.dk" in page.get_by_role("status").inner_text()

    page.goto(staff_server.url + "/staff/leads")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert "Petra Routed" in download.value.path().read_text(encoding="utf-8")

    page.goto(staff_server.url + "/staff/admin/access-log")
    rows = page.locator("table tbody tr")
    # Newest first: the lead the export held, the export, the queue page it came from, the view.
    assert "Exported" in rows.nth(0).inner_text() and facts["reference"] in rows.nth(0).inner_text()
    assert "Exported" in rows.nth(1).inner_text() and "Leads: 1;" in rows.nth(1).inner_text()
    assert "Viewed the queue" in rows.nth(2).inner_text()
    assert "Viewed" in rows.nth(3).inner_text()
    assert axe_violations(page) == []
    actions = db.session.scalars(sa.select(AccessLog.action).order_by(AccessLog.id)).all()
    db.session.rollback()
    assert [a for a in actions if a != "queue"] == ["view", "export", "export"] and "queue" in actions


def test_an_admin_reads_the_operations_page_and_a_coordinator_sets_a_time_zone(staff_server, page, taxonomy):
    _setup()  # one email failed: a figure past its threshold
    sign_in_staff(page, staff_server, "admin@example.dk")
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("link", name="Operations").click()
    assert page.get_by_role("heading", name="Operations", level=1).is_visible()
    failed = page.get_by_role("row").filter(has_text="failed")
    assert "Attention" in failed.first.inner_text()
    assert axe_violations(page) == []

    page.get_by_role("link", name="My settings").click()
    page.get_by_label("Time zone").select_option("Atlantic/Reykjavik")
    # axe reads the page the save leads to once it has loaded, styles included (run on a page
    # still arriving, unstyled links are too small to touch and the check fails for no fault).
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name="Save my settings").click()
    assert axe_violations(page) == []
    admin = db.session.scalar(sa.select(User).filter_by(email="admin@example.dk"))
    zone = admin.time_zone
    db.session.rollback()
    assert zone == "Atlantic/Reykjavik"


def test_an_admin_sees_every_request_an_erasure_will_erase_before_erasing_them(staff_server, page, taxonomy):
    facts = _setup()
    again = LeadFactory(email=db.session.get(Lead, facts["lead_id"]).email)  # the patient wrote twice
    db.session.commit()
    references = [db.session.get(Lead, facts["lead_id"]).reference, again.reference]
    db.session.rollback()
    sign_in_staff(page, staff_server, "admin@example.dk")
    page.goto(f"{staff_server.url}/staff/leads/{facts['lead_id']}")
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("link", name="Erase the patient's data").click()
    listed = page.get_by_role("table", name="Requests that will be erased").locator("tbody tr")
    assert [row.get_by_role("link").inner_text() for row in listed.all()] == references
    assert axe_violations(page) == []
    page.get_by_label("I have checked that this is the patient's own request").check()
    page.once("dialog", lambda dialog: dialog.accept())  # the form asks once more
    page.get_by_role("button", name="Erase the patient's data").click()
    done = page.get_by_role("status").inner_text()
    assert f"The patient's data is erased from {', '.join(references)}." in done
    erased = db.session.scalars(sa.select(Lead.anonymised_at)).all()
    db.session.rollback()
    assert None not in erased

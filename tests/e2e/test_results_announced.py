"""The result of a step reaches a screen reader in a real browser: after a patient's, a clinic's
or a coordinator's action the page opens with the message focused (a screen reader reads what has
focus; a live region present when the page loads is not announced), named "Done" or "There is a
problem", described by its words, and on screen. A page with nothing to tell takes no focus."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from leads.extensions import db
from leads.i18n import isolate
from leads.messaging import tokens
from leads.models import Assignment, Consent, LeadEvent, Quote, Role
from leads.quotes import service as quotes
from leads.routing import responses
from leads.routing.service import route_lead
from leads.timeutil import utcnow
from tests.e2e.conftest import axe_violations, screenshot, sign_in_staff
from tests.factories import EmailMessageFactory, LeadFactory
from tests.helpers import load_demo_providers_reading_english
from tests.quote_support import offer
from tests.staff_support import ago, make_staff

pytestmark = pytest.mark.e2e


def expect_result(page, text: str, *, error: bool = False) -> None:
    """The message is what has focus, read as the result, with `text`, and on screen."""
    role, name = ("alert", "There is a problem") if error else ("status", "Done")
    result = page.locator("#result")
    expect(result).to_be_focused()
    expect(page.get_by_role(role, name=name)).to_be_focused()
    expect(result).to_have_accessible_description(re.compile(re.escape(text)))
    expect(result).to_be_in_viewport()
    assert "#" not in page.url  # a fragment would keep the browser from focusing it


def expect_no_focus_taken(page) -> None:
    assert page.evaluate("document.activeElement === document.body")
    assert page.evaluate("window.scrollY") == 0
    expect(page.locator("[autofocus]")).to_have_count(0)


def routed_lead():
    """A lead with its consent, routed to the demo clinics: the lead and its assignments, by rank."""
    load_demo_providers_reading_english()
    lead = LeadFactory(full_name="Karim Haddad")
    db.session.add(
        Consent(
            lead=lead, text_version="test-v1", share_with_providers=True, contact=True, source_form="quote"
        )
    )
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    return lead, db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()


@pytest.fixture
def two_quotes(app, taxonomy, live_server):
    """A lead two clinics accepted and quoted: (lead id, [assignment ids], [quote ids], [names])."""
    lead, assignments = routed_lead()
    assignments = assignments[:2]
    for assignment in assignments:
        responses.accept(assignment.id, note=None)
    quote_ids = [quotes.send_quote(a.id, offer()).id for a in assignments]
    facts = lead.id, [a.id for a in assignments], quote_ids, [a.provider.name for a in assignments]
    db.session.commit()
    return facts


def test_a_patient_on_a_phone_hears_a_refused_choice_then_the_one_that_worked(
    live_server, phone_page, two_quotes
):
    lead_id, assignment_ids, quote_ids, names = two_quotes
    patient_url = f"{live_server.url}/my-request/{tokens.make_patient_token(lead_id)}"
    page = phone_page
    page.goto(patient_url)
    expect_no_focus_taken(page)

    # The first clinic withdraws its quote while the patient reads the confirmation step.
    page.goto(f"{patient_url}/quotes/{quote_ids[0]}/choose")
    quotes.withdraw_quote(assignment_ids[0])
    db.session.commit()
    page.get_by_role("button", name=f"Yes, go ahead with {names[0]}").click()
    expect_result(page, "The clinic has withdrawn this quote, so it can no longer be chosen.", error=True)
    assert axe_violations(page) == []

    # The second clinic, with the keyboard.
    page.get_by_role("link", name="Go ahead with this clinic").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name=f"Yes, go ahead with {names[1]}").focus()
    page.keyboard.press("Enter")
    expect_result(
        page, f"Thank you. We have told {isolate(names[1])}; they will contact you to plan the next steps."
    )
    assert axe_violations(page) == []
    screenshot(page, "result-patient-phone")
    # Read once: coming back to the page later takes no focus.
    page.reload()
    expect_no_focus_taken(page)


def test_a_choice_sent_without_its_revision_is_announced_and_chooses_nothing(live_server, page, two_quotes):
    lead_id, _, quote_ids, names = two_quotes
    patient_url = f"{live_server.url}/my-request/{tokens.make_patient_token(lead_id)}"
    page.goto(f"{patient_url}/quotes/{quote_ids[0]}/choose")
    # A hand-made request: the confirmation without the revision it carries.
    page.locator("input[name=revision]").evaluate("input => input.remove()")
    page.get_by_role("button", name=f"Yes, go ahead with {names[0]}").click()
    summary = page.get_by_role("alert", name="There is a problem")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Your choice was not made")
    expect(summary).to_be_in_viewport()
    assert page.title().startswith("Error: ")
    expect(page.get_by_role("link", name="Go ahead with this clinic")).to_have_count(2)
    assert axe_violations(page) == []
    statuses = set(db.session.scalars(sa.select(Quote.status).filter_by(lead_id=lead_id)))
    db.session.rollback()
    assert statuses == {"live"}


def test_a_clinic_hears_that_its_answer_and_its_quote_were_saved(live_server, page, taxonomy):
    _, assignments = routed_lead()
    url = f"{live_server.url}/p/{tokens.make_assignment_token(assignments[0].id)}"
    db.session.rollback()  # hold no SQLite lock: the live server writes next

    page.goto(url)
    expect_no_focus_taken(page)
    page.get_by_role("button", name="Accept and contact the patient").click()
    expect_result(page, "Your answer is saved.")
    page.get_by_label("Price from").fill("20000")
    page.get_by_label("Price to").fill("28000")
    page.get_by_label("Earliest start").fill((utcnow().date() + timedelta(days=45)).isoformat())
    page.get_by_role("button", name="Send the quote").click()
    expect_result(page, "Your quote was sent to the patient.")
    expect(page.get_by_text("Your quote is live")).to_be_in_viewport()
    assert axe_violations(page) == []


@pytest.fixture
def long_history(app, taxonomy, staff_server):
    """A lead with a failed email and a timeline long enough to sit below the first screen."""
    make_staff(Role.COORDINATOR, email="coordinator@example.dk")
    lead = LeadFactory(full_name="Petra Routed", status="routed", created_at=ago(days=3))
    for hours in range(30, 0, -1):
        db.session.add(
            LeadEvent(
                lead=lead,
                kind="note",
                actor_type="system",
                note=f"Earlier step {hours}",
                created_at=ago(hours=hours),
            )
        )
    EmailMessageFactory(lead_id=lead.id, status="failed", last_error="550 5.1.1 No such user")
    db.session.commit()
    lead_id = lead.id
    db.session.rollback()  # hold no SQLite lock while the live server works
    return lead_id


def test_a_coordinator_hears_each_result_beside_the_timeline_and_tabs_on_to_the_actions(
    staff_server, page, long_history
):
    lead_id = long_history
    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.goto(f"{staff_server.url}/staff/leads/{lead_id}")
    expect_no_focus_taken(page)

    # With the keyboard: a note, saved with Enter on its button.
    page.get_by_label("Add a note").fill("Called Petra; she reads email in English.")
    page.get_by_role("button", name="Save note").focus()
    page.keyboard.press("Enter")
    expect_result(page, "Note added.")
    timeline = page.locator("#timeline")
    expect(timeline.locator("#result")).to_have_count(1)  # beside the timeline, where the step lands
    expect(timeline.get_by_role("heading", name="Timeline")).to_be_in_viewport()
    # The next Tab goes on to the actions, as it did when the page jumped to the timeline.
    page.keyboard.press("Tab")
    expect(page.get_by_label("Add a note")).to_be_focused()

    page.get_by_role("button", name="Send again").click()
    expect_result(page, "is queued again")
    assert axe_violations(page) == []

    page.get_by_label("New status").select_option("closed_lost")
    page.get_by_role("button", name="Change status").click()
    expect_result(page, "Status changed to Closed lost.")
    expect(timeline.get_by_text("Routed → Closed lost")).to_have_count(1)

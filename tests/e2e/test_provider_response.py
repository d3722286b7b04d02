"""A provider accepts or declines in a real browser, through the link in their email, with the
CSRF token the form carries; the patient uses their own link."""

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from leads.extensions import db
from leads.messaging import tokens
from leads.messaging.urls import patient_link
from leads.models import Assignment, Consent, EmailMessage, Lead
from leads.routing.service import route_lead
from tests.e2e.conftest import axe_violations, screenshot
from tests.factories import LeadFactory
from tests.helpers import load_demo_providers_reading_english


@pytest.fixture
def routed(app, taxonomy, live_server):
    load_demo_providers_reading_english()
    lead = LeadFactory(full_name="Karim Haddad", details="T4 complete, 2022")
    db.session.add(
        Consent(
            lead=lead, text_version="test-v1", share_with_providers=True, contact=True, source_form="quote"
        )
    )
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    assignment_ids = db.session.scalars(
        sa.select(Assignment.id).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()
    ids = (lead.id, assignment_ids[0], patient_link(lead.id))
    db.session.rollback()  # hold no SQLite lock: the live server writes next
    return ids


def _state(model, row_id, attribute):
    value = getattr(db.session.get(model, row_id), attribute)
    db.session.rollback()
    db.session.expire_all()
    return value


def test_a_provider_accepts_with_a_note_and_is_asked_for_a_written_quote(live_server, page, routed):
    lead_id, first_id, _ = routed
    page.goto(f"{live_server.url}/p/{tokens.make_assignment_token(first_id)}")
    expect(page.get_by_text("Karim Haddad")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "provider-request")
    expect(page.get_by_label("First price range (optional)")).to_have_count(0)
    accept_form = page.get_by_role("form", name="Accept")
    accept_form.get_by_label("Note for the coordinators (optional)").fill("Call Tuesday")
    page.get_by_role("button", name="Accept and contact the patient").click()
    expect(page.get_by_role("heading", name="You accepted this request")).to_be_visible()
    expect(page.get_by_role("heading", name="Your quote to the patient")).to_be_visible()
    assert _state(Assignment, first_id, "status") == "accepted"
    assert _state(Assignment, first_id, "response_note") == "Call Tuesday"
    assert _state(Lead, lead_id, "status") == "contacted"
    templates = set(db.session.scalars(sa.select(EmailMessage.template)))
    db.session.rollback()
    assert {"coordinator_provider_response", "patient_provider_accepted"} <= templates


def test_a_provider_declines_with_the_keyboard_after_a_missing_reason(live_server, page, routed):
    lead_id, first_id, _ = routed
    page.goto(f"{live_server.url}/p/{tokens.make_assignment_token(first_id)}")
    page.get_by_role("button", name="Decline").click()
    expect(page.get_by_text("Choose a reason for declining").first).to_be_visible()
    # The error summary is read first, and its link leads to the reasons.
    summary = page.get_by_role("alert", name="There is a problem")
    expect(summary).to_be_focused()
    assert page.title().startswith("Error: ")
    assert axe_violations(page) == []
    summary.get_by_role("link", name="Choose a reason for declining").click()
    expect(page.get_by_label("No capacity at the moment")).to_be_focused()
    page.get_by_label("Treatment not offered").check()
    page.get_by_role("button", name="Decline").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="You declined this request")).to_be_visible()
    assert _state(Assignment, first_id, "decline_reason") == "treatment_not_offered"


def test_a_danish_clinic_answers_on_a_phone_with_the_keyboard_and_can_hit_the_patients_contacts(
    live_server, phone_page, routed
):
    """At 360 px, in the clinic's Danish: no sideways scrolling even with a long address, and the
    patient's email and phone, links on lines of their own, are targets of at least 24 x 24 px."""
    lead_id, first_id, _ = routed
    assignment = db.session.get(Assignment, first_id)
    assignment.provider.notification_language = "da"
    assignment.lead.email = "karim.haddad.with.a.rather.long.address@example-hospital-mail.org"
    db.session.commit()
    page = phone_page
    page.goto(f"{live_server.url}/p/{tokens.make_assignment_token(first_id)}")
    assert page.get_attribute("html", "lang") == "da"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for scheme in ("mailto:", "tel:"):
        box = page.locator(f"a[href^='{scheme}']").bounding_box()
        assert box["width"] >= 24 and box["height"] >= 24, scheme
    assert axe_violations(page) == []
    page.get_by_role("button", name="Acceptér og kontakt patienten").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Dit svar er gemt.")).to_be_focused()
    expect(page.get_by_role("heading", name="Du har accepteret denne forespørgsel")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert _state(Assignment, first_id, "status") == "accepted"


def test_a_form_without_its_csrf_token_is_refused(live_server, page, routed):
    lead_id, first_id, _ = routed
    token = tokens.make_assignment_token(first_id)
    response = page.request.post(f"{live_server.url}/p/{token}/accept", form={"note": "1"})
    assert response.status == 400
    assert _state(Assignment, first_id, "status") == "notified"


def test_the_patient_withdraws_through_their_link(live_server, page, routed):
    lead_id, _, link = routed
    path = "/my-request/" + link.rsplit("/my-request/", 1)[1]
    page.goto(live_server.url + path)
    expect(page.get_by_role("heading", name="Clinics are looking at your request")).to_be_visible()
    assert axe_violations(page) == []
    page.get_by_label("I want to withdraw my consent").check()
    page.get_by_role("button", name="Withdraw my consent").click()
    expect(page.get_by_role("heading", name="You have withdrawn your request")).to_be_visible()
    assert _state(Lead, lead_id, "status") == "withdrawn"

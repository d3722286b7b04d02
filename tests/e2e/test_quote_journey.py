"""The quote journey in a real browser: two clinics quote (one revises), the patient compares on
a 360 px phone and chooses with a confirmation step, the chosen clinic confirms the booking, the
other clinic is thanked, and the coordinator sees it all on the lead page and on the stats page."""

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from leads.extensions import db
from leads.i18n import isolate
from leads.messaging import tokens
from leads.models import Assignment, Consent, EmailMessage, Lead, Provider, Quote
from leads.quotes import service as quotes
from leads.quotes.follow_up import follow_up_quotes
from leads.routing import responses
from leads.routing.service import route_lead
from leads.timeutil import utcnow
from tests.e2e.conftest import axe_violations, screenshot, sign_in_staff
from tests.factories import LeadFactory
from tests.helpers import load_demo_providers_reading_english
from tests.quote_support import offer
from tests.staff_support import make_staff

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def two_accepted(app, taxonomy, live_server):
    load_demo_providers_reading_english()
    lead = LeadFactory(full_name="Karim Haddad", contact_preference="whatsapp")
    db.session.add(
        Consent(
            lead=lead, text_version="test-v1", share_with_providers=True, contact=True, source_form="quote"
        )
    )
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    first, second = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()[:2]
    for assignment in (first, second):
        responses.accept(assignment.id, note=None)
    ids = lead.id, first.id, second.id, first.provider.name, second.provider.name
    make_staff(email="coordinator@example.dk")
    db.session.commit()
    return ids


def _send_quote(page, url, *, price_from, price_to, currency="EUR", revise=False):
    page.goto(url)
    page.get_by_label("Price from").fill(str(price_from))
    page.get_by_label("Price to").fill(str(price_to))
    page.get_by_label("Currency").select_option(currency)
    page.get_by_label("Rehabilitation").check()
    page.get_by_label("Earliest start").fill((utcnow().date() + timedelta(days=45)).isoformat())
    page.get_by_label("Message to the patient (optional)").fill("We look forward to meeting you.")
    name = "Send the revised quote" if revise else "Send the quote"
    page.get_by_role("button", name=name).click()
    expect(page.get_by_text("Your quote is live")).to_be_visible()


def _keep(shot: Path) -> None:
    """With UPDATE_DOCS_SCREENSHOTS=1, refresh the README's screenshot in docs/ (else test-output/ only)."""
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        shutil.copy(shot, DOCS / shot.name)


def _status(model, row_id):
    value = db.session.get(model, row_id).status
    db.session.rollback()
    db.session.expire_all()
    return value


def test_two_clinics_quote_the_patient_compares_on_a_phone_chooses_and_the_clinic_books(
    live_server, staff_server, page, phone_page, two_accepted
):
    lead_id, first_id, second_id, first_name, second_name = two_accepted
    first_url = f"{live_server.url}/p/{tokens.make_assignment_token(first_id)}"
    second_url = f"{live_server.url}/p/{tokens.make_assignment_token(second_id)}"

    page.goto(first_url)
    page.get_by_label("Price from").fill("30000")
    page.get_by_label("Price to").fill("20000")
    page.get_by_role("button", name="Send the quote").click()
    expect(page.locator("#price_to-error")).to_have_text(
        "Error: The highest price cannot be below the lowest price"
    )
    expect(page.get_by_role("alert", name="There is a problem")).to_be_focused()
    assert axe_violations(page) == []
    _send_quote(page, first_url, price_from=22000, price_to=30000)
    _send_quote(page, first_url, price_from=20000, price_to=28000, revise=True)
    # Typed as the page's language groups thousands; a browser's number box would refuse it.
    _send_quote(page, second_url, price_from="160,000", price_to="190,000", currency="DKK")
    assert _status(Lead, lead_id) == "quoted"

    patient_url = f"{live_server.url}/my-request/{tokens.make_patient_token(lead_id)}"
    phone_page.goto(patient_url)
    quotes = phone_page.locator(".quote-card")
    expect(quotes).to_have_count(2)
    expect(phone_page.get_by_text("€20,000 to €28,000")).to_be_visible()
    expect(phone_page.get_by_text("About DKK\xa0149,200 to DKK\xa0208,900", exact=False)).to_be_visible()
    # Stacked on a phone: one card above the other, and nothing wider than the screen.
    first_box, second_box = quotes.nth(0).bounding_box(), quotes.nth(1).bounding_box()
    assert second_box["y"] >= first_box["y"] + first_box["height"]
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 360
    assert axe_violations(phone_page) == []
    _keep(screenshot(phone_page, "quotes-compare-phone"))
    page.goto(patient_url)
    assert axe_violations(page) == []
    _keep(screenshot(page, "quotes-compare-desktop"))

    # With the keyboard alone: Tab to the first clinic's button and press Enter.
    choose = phone_page.get_by_role("link", name="Go ahead with this clinic").first
    choose.focus()
    phone_page.keyboard.press("Enter")
    expect(phone_page.get_by_role("heading", name=f"Go ahead with {first_name}?")).to_be_visible()
    assert axe_violations(phone_page) == []
    screenshot(phone_page, "quotes-confirm-phone")
    phone_page.get_by_role("button", name=f"Yes, go ahead with {first_name}").click()
    expect(phone_page.get_by_text(f"We have told {isolate(first_name)}")).to_be_visible()
    assert _status(Lead, lead_id) == "chosen"
    assert _status(Assignment, second_id) == "not_chosen"

    page.goto(first_url)
    page.get_by_label("Treatment date").fill((utcnow().date() + timedelta(days=60)).isoformat())
    page.get_by_role("button", name="Confirm the treatment is booked").click()
    expect(page.get_by_text("the booking is confirmed")).to_be_visible()
    assert _status(Lead, lead_id) == "booked"

    page.goto(second_url)
    expect(page.get_by_text("The patient decided not to go ahead with your clinic")).to_be_visible()
    second_addresses = set(
        db.session.get(Provider, db.session.get(Assignment, second_id).provider_id).notification_emails
    )
    thanked = set(
        db.session.scalars(
            sa.select(EmailMessage.to_address).filter_by(template="notice_provider_not_chosen")
        )
    )
    db.session.rollback()
    assert thanked == second_addresses

    sign_in_staff(page, staff_server, "coordinator@example.dk")
    page.goto(f"{staff_server.url}/staff/leads/{lead_id}")
    quotes_section = page.locator("#quotes")
    expect(quotes_section.get_by_role("heading", name=f"{first_name}: Chosen")).to_be_visible()
    expect(quotes_section.get_by_role("heading", name=f"{second_name}: Not chosen")).to_be_visible()
    expect(quotes_section.get_by_text("€22,000 to €30,000")).to_be_visible()
    expect(quotes_section.get_by_text("Treatment booked for")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "quotes-lead-page")

    # The stats page: one lead with two quotes, the patient chose and booked.
    page.get_by_role("link", name="Stats").first.click()
    quotes_figures = page.get_by_role("region", name="Quotes and choices per provider")
    expect(page.get_by_role("heading", name="Quotes", exact=True)).to_be_visible()
    expect(page.get_by_role("row", name="Leads with at least one quote 1")).to_be_visible()
    expect(page.get_by_role("row", name="Quotes per lead with a quote 2.0")).to_be_visible()
    expect(page.get_by_role("row", name="Patients who chose a clinic 1 (100%)")).to_be_visible()
    expect(quotes_figures.get_by_role("row", name=f"{first_name} 1 1")).to_be_visible()
    expect(quotes_figures.get_by_role("row", name=f"{second_name} 1 0")).to_be_visible()
    funnel = page.get_by_role("table", name="Funnel")
    expect(funnel.get_by_role("row", name="Chosen 1")).to_be_visible()
    assert axe_violations(page) == []
    screenshot(page, "quotes-stats")


def test_two_tabs_choosing_two_different_quotes_at_once_end_with_exactly_one_choice(
    live_server, browser, two_accepted
):
    lead_id, first_id, second_id, first_name, second_name = two_accepted
    quote_ids = [quotes.send_quote(assignment_id, offer()).id for assignment_id in (first_id, second_id)]
    db.session.rollback()  # the browser's requests need the database free of this session
    patient_url = f"{live_server.url}/my-request/{tokens.make_patient_token(lead_id)}"
    # Two tabs of the same browser, each on the confirmation step of a different clinic.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tabs = [context.new_page(), context.new_page()]
        for tab, quote_id, name in zip(tabs, quote_ids, (first_name, second_name), strict=True):
            tab.set_default_timeout(30_000)
            tab.goto(f"{patient_url}/quotes/{quote_id}/choose")
            expect(tab.get_by_role("button", name=f"Yes, go ahead with {name}")).to_be_visible()
        # Both confirmations are submitted before either answer arrives.
        for tab in tabs:
            tab.evaluate("document.querySelector('form[action$=\"/choose\"]').requestSubmit()")
        for tab in tabs:
            expect(tab.get_by_role("heading", name="You have chosen a clinic")).to_be_visible()
        # Each tab shows one chosen clinic. (The tabs share one session cookie, so which tab shows
        # the thank-you or the refusal, and whether both survive the race for the cookie, is the
        # browser's timing, not the product's: the messages are not counted.)
        chosen_lines = [tab.get_by_text(re.compile(r"You chose .+ on ")).count() for tab in tabs]
    finally:
        context.close()
    assert chosen_lines == [1, 1]
    statuses = sorted(db.session.scalars(sa.select(Quote.status).filter_by(lead_id=lead_id)))
    db.session.rollback()
    assert statuses == ["chosen", "not_chosen"]
    assert _status(Lead, lead_id) == "chosen"


def test_the_patient_asks_with_the_keyboard_to_renew_an_expired_quote(live_server, page, two_accepted):
    lead_id, first_id, _, first_name, _ = two_accepted
    quote = quotes.send_quote(first_id, offer(valid_days=1))
    quote.current.valid_until = utcnow() - timedelta(hours=1)
    db.session.commit()
    assert follow_up_quotes().expired == 1
    patient_url = f"{live_server.url}/my-request/{tokens.make_patient_token(lead_id)}"
    page.goto(patient_url)
    # Named by its visible text first (WCAG 2.5.3), then the clinic.
    renew = page.get_by_role("button", name=f"Ask the clinic to renew this quote ({first_name})")
    expect(renew).to_be_visible()
    assert axe_violations(page) == []
    renew.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("We have asked the clinic to renew its quote")).to_be_visible()
    assert "#" not in page.url  # the page opens at the top, where that message is
    expect(page.get_by_role("status", name="Done")).to_be_focused()  # so a screen reader reads it
    expect(page.get_by_text("You asked the clinic to renew it on")).to_be_visible()
    assert axe_violations(page) == []
    # Withdrawing without the tick: the error summary is focused and links to the tick box.
    page.get_by_role("button", name="Withdraw my consent").click()
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.title().startswith("Error: ")
    page.locator("#error-summary").get_by_role("link").click()
    expect(page.locator("#confirm_withdraw")).to_be_focused()
    assert axe_violations(page) == []
    asked = db.session.scalars(sa.select(EmailMessage.template).filter_by(lead_id=lead_id)).all()
    db.session.rollback()
    assert "provider_quote_renewal" in asked

"""The quote form in a real browser (Debian's Chromium via Playwright): keyboard only, errors,
JavaScript off, a 360 px phone, reflow at 320 px, and axe-core's WCAG 2.2 AA rules."""

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from leads.extensions import db
from leads.models import Lead
from tests.e2e.conftest import axe_violations, screenshot
from tests.quote_support import VALID_ANSWERS

pytestmark = pytest.mark.e2e

REFERENCE = re.compile(r"Q-[23456789A-HJKMNP-Z]{6}")


@pytest.fixture
def quote_url(live_server, taxonomy):
    """The form's address on a live server whose time trap does not wait on a fast robot."""
    live_server.app.config["QUOTE_MIN_FILL_SECONDS"] = 0
    live_server.app.config["QUOTE_RATE_LIMIT"] = "1000 per minute"
    return live_server.url + "/quote"


def _lead(reference: str) -> Lead | None:
    lead = db.session.scalar(sa.select(Lead).filter_by(reference=reference))
    db.session.rollback()  # end the read: the live server writes to the same SQLite file
    return lead


def _focused_name(page) -> str:
    return page.evaluate(
        "document.activeElement && (document.activeElement.name || document.activeElement.id)"
    )


def _tab_to(page, name: str, limit: int = 60) -> None:
    """Press Tab until the control called `name` has focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if _focused_name(page) == name:
            return
    pytest.fail(f"{name} cannot be reached with the Tab key")


def _fill_with_mouse_free_hands(page, answers: dict) -> None:
    """Fill the form with Playwright's form helpers (no keyboard walk), for the other tests."""
    for name in ("full_name", "email", "phone", "details"):
        page.locator(f"[name={name}]").fill(answers[name])
    for name in ("country", "preferred_language", "treatment", "condition"):
        page.locator(f"select[name={name}]").select_option(answers[name])
    for name in ("timeframe", "budget", "contact_preference"):
        page.locator(f"input[name={name}][value='{answers[name]}']").check()
    page.locator("#consent_share").check()
    page.locator("#consent_contact").check()


def test_a_patient_fills_and_sends_the_form_with_the_keyboard_only(quote_url, page):
    page.goto(quote_url)
    _tab_to(page, "full_name")
    page.keyboard.type("Søren Ærø")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "email"
    page.keyboard.type("soren@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("+45 20 12 34 56")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "country"
    page.keyboard.type("Denmark")  # type-ahead in a focused select
    page.keyboard.press("Tab")
    page.keyboard.type("Danish")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "treatment"
    page.keyboard.type("Intensive")
    page.keyboard.press("Tab")
    page.keyboard.type("Spinal cord injury (i")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "details"
    page.keyboard.type("Injured at C6 in 2023.")
    for group, presses in (("timeframe", 2), ("budget", 4), ("contact_preference", 0)):
        _tab_to(page, group)
        for _ in range(presses):
            page.keyboard.press("ArrowDown")
        page.keyboard.press("Space")  # select the focused radio (arrows already did, Space confirms)
    _tab_to(page, "consent_share")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "consent_contact"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Send my request"
    page.keyboard.press("Enter")

    page.wait_for_url("**/quote/thanks")
    reference = REFERENCE.search(page.locator("#reference").inner_text()).group(0)
    lead = _lead(reference)
    assert lead is not None
    assert (lead.full_name, lead.email, lead.phone, lead.country, lead.preferred_language) == (
        "Søren Ærø",
        "soren@example.org",
        "+4520123456",
        "DK",
        "da",
    )
    assert (lead.timeframe, lead.budget, lead.contact_preference) == ("3-6-months", "not-sure", "email")
    assert lead.treatment.slug == "neurorehabilitation-spinal-cord-injury"
    assert lead.condition.slug == "spinal-cord-injury-incomplete"
    assert "soren" not in page.url and reference not in page.url


def test_the_blank_form_passes_axe_and_has_a_language(quote_url, page):
    page.goto(quote_url)
    assert page.get_attribute("html", "lang") == "en"
    assert axe_violations(page) == []


def test_errors_show_a_focused_summary_whose_links_lead_to_the_fields(quote_url, page):
    page.goto(quote_url)
    page.locator("[name=full_name]").fill("Freja Ørsted")
    page.locator("[name=email]").fill("freja.example.org")
    page.get_by_role("button", name="Send my request").click()

    summary = page.locator("#error-summary")
    summary.wait_for()
    page.wait_for_load_state("load")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.title().startswith("Error: ")
    assert "Enter an email address with an @ in it" in summary.inner_text()
    assert "Tick this box to let us share your request" in summary.inner_text()
    assert page.locator("[name=full_name]").input_value() == "Freja Ørsted"  # input kept
    assert page.locator("#email").get_attribute("aria-describedby") == "email-hint email-error"
    assert axe_violations(page) == []

    page.keyboard.press("Tab")  # from the summary into its first link
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#email"
    summary.get_by_role("link", name=re.compile("Choose when you would like treatment")).click()
    assert page.evaluate("location.hash") == "#timeframe-0"


def test_the_thank_you_page_passes_axe(quote_url, page):
    page.goto(quote_url)
    _fill_with_mouse_free_hands(page, VALID_ANSWERS)
    page.get_by_role("button", name="Send my request").click()
    page.wait_for_url("**/quote/thanks")
    assert REFERENCE.fullmatch(page.locator("#reference").inner_text())
    assert axe_violations(page) == []


def test_with_javascript_off_the_form_works_and_errors_still_take_focus(quote_url, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(quote_url)
        page.get_by_role("button", name="Send my request").click()
        # Autofocus, not script; the browser applies it once the page has rendered, so wait for it.
        expect(page.locator("#error-summary")).to_be_focused()
        _fill_with_mouse_free_hands(page, VALID_ANSWERS)
        page.get_by_role("button", name="Send my request").click()
        page.wait_for_url("**/quote/thanks")
        reference = page.locator("#reference").inner_text()
        assert _lead(reference) is not None
    finally:
        context.close()


def test_with_javascript_on_only_conditions_of_the_chosen_treatment_are_offered(quote_url, page):
    page.goto(quote_url)
    condition = page.locator("select[name=condition]")
    condition.select_option("knee-osteoarthritis")
    page.locator("select[name=treatment]").select_option("stem-cell-als")
    assert condition.input_value() == ""  # the knee no longer fits, so it was cleared
    assert page.locator("option[value=knee-osteoarthritis]").is_disabled()
    assert page.locator("option[value=als]").is_enabled()


def test_on_a_360px_phone_the_form_fits_the_screen(quote_url, phone_page):
    phone_page.goto(quote_url)
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone_page, "quote-form-360px")
    phone_page.get_by_role("button", name="Send my request").click()
    phone_page.locator("#error-summary").wait_for()
    phone_page.wait_for_load_state("load")  # the stylesheet too, before measuring
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone_page, "quote-form-errors-360px")
    assert axe_violations(phone_page) == []


@pytest.mark.parametrize("width", [320, 640])
def test_the_form_reflows_at_400_and_200_percent_zoom(quote_url, browser, width):
    """320 CSS px is a 1280 px window at 400% zoom (WCAG 1.4.10); 640 px is 200%."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    try:
        page.goto(quote_url)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()

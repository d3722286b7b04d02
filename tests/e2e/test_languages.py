"""Every patient language in a real browser: the quote form, its error state, the thank-you page
and the patient's own page carry the right `lang` and `dir`, pass axe-core's WCAG 2.2 AA rules and
show no English sentence; the form is sent with the keyboard alone in Arabic and German."""

import os
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging import tokens
from leads.models import Lead
from tests.e2e.conftest import axe_violations, screenshot
from tests.quote_support import NOTHING_STORED, VALID_ANSWERS, stored_counts

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = re.compile(r"Q-[23456789A-HJKMNP-Z]{6}")
# Words of English sentences that no page in another language may show (the brand name and the
# language menu, which names English in English, are left out of the scan).
SENTINELS = re.compile(
    r"\b(the|your|you|and|with|please|choose|request|required|optional|consent|clinic|quote|"
    r"treatment|error|thank)\b",
    re.IGNORECASE,
)
DIRECTION = {"en": "ltr", "da": "ltr", "de": "ltr", "sv": "ltr", "nb": "ltr", "ar": "rtl"}


@pytest.fixture
def quote_url(live_server, taxonomy):
    live_server.app.config["QUOTE_MIN_FILL_SECONDS"] = 0
    live_server.app.config["QUOTE_RATE_LIMIT"] = "1000 per minute"
    return live_server.url + "/quote"


def _english_left(page) -> list[str]:
    text = page.evaluate(
        """() => {
            const body = document.body.cloneNode(true);
            body.querySelectorAll('.language-menu, .brand, script, .hp-field').forEach(el => el.remove());
            return body.innerText.replaceAll('Danish Treatment Quotes', '');
        }"""
    )
    return sorted({match.lower() for match in SENTINELS.findall(text)})


def _check(page, language: str) -> None:
    """The page says its language and direction truly, passes axe, and shows no English."""
    assert page.get_attribute("html", "lang") == language
    assert page.get_attribute("html", "dir") == DIRECTION[language]
    assert axe_violations(page) == []
    if language != "en":
        assert _english_left(page) == [], f"English words on {page.url} in {language}"


def _fill(page, answers: dict) -> None:
    for name in ("full_name", "email", "phone", "details"):
        page.locator(f"[name={name}]").fill(answers[name])
    for name in ("country", "treatment", "condition"):
        page.locator(f"select[name={name}]").select_option(answers[name])
    for name in ("timeframe", "budget", "contact_preference"):
        page.locator(f"input[name={name}][value='{answers[name]}']").check()
    page.locator("#consent_share").check()
    page.locator("#consent_contact").check()


def _stored(reference: str) -> dict:
    """What was stored for the request, read in one short transaction (the live server writes too)."""
    lead = db.session.scalar(sa.select(Lead).filter_by(reference=reference))
    stored = {
        "id": lead.id,
        "answers": (lead.country, lead.preferred_language, lead.timeframe, lead.budget),
        "taxonomy": (lead.treatment.slug, lead.condition.slug),
        "consent_language": lead.consent.language,
    }
    db.session.rollback()
    return stored


def _keep(shot: Path) -> None:
    """With UPDATE_DOCS_SCREENSHOTS=1, refresh the screenshot in docs/ (else test-output/ only)."""
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        shutil.copy(shot, DOCS / shot.name)


@pytest.mark.parametrize("language", ["en", "da", "de", "sv", "nb", "ar"])
def test_the_form_its_errors_the_thanks_and_the_patients_page_in_each_language(
    quote_url, live_server, page, language
):
    page.goto(f"{quote_url}?lang={language}")
    _check(page, language)
    if language in ("da", "ar"):
        _keep(screenshot(page, f"quote-form-{language}-desktop"))

    page.locator("form.quote-form button[type=submit]").click()
    page.wait_for_selector("#error-summary")
    _check(page, language)

    _fill(page, VALID_ANSWERS)
    page.locator("form.quote-form button[type=submit]").click()
    page.wait_for_url("**/quote/thanks")
    _check(page, language)
    stored = _stored(REFERENCE.search(page.locator("#reference").inner_text()).group(0))
    assert stored["consent_language"] == language

    page.goto(f"{live_server.url}/my-request/{tokens.make_patient_token(stored['id'])}?lang={language}")
    _check(page, language)


@pytest.mark.parametrize("language", ["da", "ar"])
def test_the_form_fits_a_phone_and_mirrors_in_arabic(quote_url, phone_page, language):
    phone_page.goto(f"{quote_url}?lang={language}")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 360
    label = phone_page.locator("label[for=full_name]").bounding_box()
    field = phone_page.locator("#full_name").bounding_box()
    if language == "ar":
        # Right to left: the label starts at the right edge of its field, not the left.
        assert abs((label["x"] + label["width"]) - (field["x"] + field["width"])) < 2
    else:
        assert abs(label["x"] - field["x"]) < 2
    _keep(screenshot(phone_page, f"quote-form-{language}-phone"))


def _focused_name(page) -> str:
    return page.evaluate(
        "document.activeElement && (document.activeElement.name || document.activeElement.id)"
    )


def _tab_to(page, name: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if _focused_name(page) == name:
            return
    pytest.fail(f"{name} cannot be reached with the Tab key")


def _choose_with_arrows(page, value: str) -> None:
    """In the focused list, press the down arrow until `value` is chosen, as a keyboard user
    does (type-ahead in Arabic needs an Arabic keyboard, which a test cannot have)."""
    steps = page.evaluate(
        """value => {
            const options = [...document.activeElement.options].filter(o => !o.disabled);
            return options.findIndex(o => o.value === value) - document.activeElement.selectedIndex;
        }""",
        value,
    )
    assert steps >= 0
    for _ in range(steps):
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.value") == value


@pytest.mark.parametrize("language", ["de", "ar"])
def test_a_patient_sends_the_form_with_the_keyboard_only(quote_url, page, language):
    page.goto(f"{quote_url}?lang={language}")
    _tab_to(page, "full_name")
    page.keyboard.type("Søren Ærø")
    page.keyboard.press("Tab")
    page.keyboard.type("soren@example.org")
    page.keyboard.press("Tab")
    page.keyboard.type("+45 20 12 34 56")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "country"
    _choose_with_arrows(page, "DK")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "preferred_language"
    assert page.evaluate("document.activeElement.value") == language  # already the page's language
    page.keyboard.press("Tab")
    _choose_with_arrows(page, "neurorehabilitation-spinal-cord-injury")
    page.keyboard.press("Tab")
    _choose_with_arrows(page, "spinal-cord-injury-incomplete")
    page.keyboard.press("Tab")
    assert _focused_name(page) == "details"
    page.keyboard.type("C6, 2023.")
    for group, presses in (("timeframe", 2), ("budget", 4), ("contact_preference", 0)):
        _tab_to(page, group)
        for _ in range(presses):
            page.keyboard.press("ArrowDown")
        page.keyboard.press("Space")
    _tab_to(page, "consent_share")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.type") == "submit"
    page.keyboard.press("Enter")

    page.wait_for_url("**/quote/thanks")
    stored = _stored(REFERENCE.search(page.locator("#reference").inner_text()).group(0))
    assert stored["answers"] == ("DK", language, "3-6-months", "not-sure")
    assert stored["taxonomy"] == ("neurorehabilitation-spinal-cord-injury", "spinal-cord-injury-incomplete")
    assert stored["consent_language"] == language


def test_a_patient_who_changes_language_on_the_form_keeps_the_answers_typed(quote_url, phone_page):
    """With the keyboard, on a phone: the answers come back in the chosen language, nothing is
    sent, and the consent boxes wait to be ticked against the wording in that language."""
    page = phone_page
    page.goto(f"{quote_url}?lang=en")
    page.locator("#full_name").fill("Karim Haddad")
    page.locator("#details").fill("C6, 2023.")
    page.locator("select[name=country]").select_option("DK")
    page.locator("input[name=timeframe][value='3-6-months']").check()
    page.locator("#consent_share").check()

    page.get_by_role("button", name="العربية").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.documentElement.lang === 'ar'")

    assert page.get_attribute("html", "dir") == "rtl"
    assert page.locator("#full_name").input_value() == "Karim Haddad"
    assert page.locator("#details").input_value() == "C6, 2023."
    assert page.locator("select[name=country]").input_value() == "DK"
    assert page.locator("input[name=timeframe][value='3-6-months']").is_checked()
    assert not page.locator("#consent_share").is_checked()
    assert page.locator("#consent_share + label [lang]").count() == 0  # the wording is Arabic
    assert page.locator("#error-summary").count() == 0
    counts = stored_counts()
    db.session.rollback()  # no read left open while the live server writes
    assert counts == NOTHING_STORED
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    _check(page, "ar")

    _fill(page, VALID_ANSWERS)
    page.locator("form.quote-form button[type=submit]").click()
    page.wait_for_url("**/quote/thanks")
    stored = _stored(REFERENCE.search(page.locator("#reference").inner_text()).group(0))
    assert stored["consent_language"] == "ar"


@pytest.fixture(params=["javascript off", "script not loaded"])
def scriptless_phone_page(browser, request):
    """A 360 px phone whose page runs no script of ours: JavaScript switched off, or the form's
    script failing to load."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        java_script_enabled=request.param != "javascript off",
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    if request.param == "script not loaded":
        page.route("**/static/js/*.js", lambda route: route.abort())
    yield page
    context.close()


def test_without_javascript_a_patient_who_changes_language_keeps_every_answer(
    quote_url, scriptless_phone_page
):
    """The language menu's buttons belong to the form: every answer comes back in Danish, nothing
    checked or stored, the consent boxes waiting to be ticked against the Danish wording."""
    page = scriptless_phone_page
    page.goto(f"{quote_url}?lang=en")
    typed = {**VALID_ANSWERS, "preferred_language": "de"}  # not the page's language, before or after
    _fill(page, typed)
    page.locator("select[name=preferred_language]").select_option(typed["preferred_language"])

    page.locator(".language-menu [lang=da]").click()
    page.wait_for_url("**/quote?*language=da")

    assert page.get_attribute("html", "lang") == "da"
    assert page.locator("h1").inner_text() == "Bed om et gratis tilbud på behandling i Danmark"
    for name in ("full_name", "email", "phone", "details"):
        assert page.locator(f"[name={name}]").input_value() == typed[name], name
    for name in ("country", "preferred_language", "treatment", "condition"):
        assert page.locator(f"select[name={name}]").input_value() == typed[name], name
    for name in ("timeframe", "budget", "contact_preference"):
        assert page.locator(f"input[name={name}][value='{typed[name]}']").is_checked(), name
    assert not page.locator("#consent_share").is_checked()
    assert not page.locator("#consent_contact").is_checked()
    assert page.locator("#consent_share + label [lang]").count() == 0  # the wording is Danish
    assert page.locator("#error-summary").count() == 0
    counts = stored_counts()
    db.session.rollback()  # no read left open while the live server writes
    assert counts == NOTHING_STORED
    # Still fits the phone, each language a target 44 px tall, the chosen one marked.
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    for box in [button.bounding_box() for button in page.locator(".language-menu li button").all()]:
        assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert page.get_by_role("button", name="Dansk").get_attribute("aria-current") == "true"

    page.locator("#consent_share").check()
    page.locator("#consent_contact").check()
    page.get_by_role("button", name="Send min forespørgsel").click()
    page.wait_for_url("**/quote/thanks")
    stored = _stored(REFERENCE.search(page.locator("#reference").inner_text()).group(0))
    assert stored["answers"] == ("DK", "de", typed["timeframe"], typed["budget"])
    assert stored["consent_language"] == "da"


def test_without_javascript_enter_in_a_field_sends_the_form_not_a_language_switch(
    quote_url, scriptless_phone_page
):
    """The language buttons come before the form's own in the page: Enter must still send the form."""
    page = scriptless_phone_page
    page.goto(f"{quote_url}?lang=en")
    page.locator("#full_name").fill("Karim Haddad")
    page.locator("#full_name").press("Enter")
    page.locator("#error-summary").wait_for()

    assert page.get_attribute("html", "lang") == "en"
    assert "language=" not in page.url
    assert page.locator("#error-summary").inner_text().startswith("Please check your answers")
    assert page.locator("#full_name").input_value() == "Karim Haddad"


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript on", "javascript off"])
def test_back_after_a_language_switch_brings_no_consent_tick_to_the_other_wording(
    quote_url, browser, javascript
):
    """Back after switching to Danish asks for the English page again, which the session's choice
    now shows in Danish: the browser may fill in the answers typed, never the consent boxes
    ticked next to the English wording."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{quote_url}?lang=en")
    _fill(page, VALID_ANSWERS)
    page.locator(".language-menu [lang=da]").click()
    page.wait_for_url("**/quote?*language=da")
    assert not page.locator("#consent_share").is_checked()

    page.go_back()
    page.wait_for_url("**/quote?lang=en")

    assert page.get_attribute("html", "lang") == "da"
    assert page.locator("#consent_share + label [lang]").count() == 0  # the wording is Danish
    assert page.locator("[name=full_name]").input_value() == VALID_ANSWERS["full_name"]  # restored
    assert not page.locator("#consent_share").is_checked()
    assert not page.locator("#consent_contact").is_checked()
    context.close()

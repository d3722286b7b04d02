"""Which language a patient reads: their own choice from the menu (kept for the visit), then a
link's `lang`, then the browser's Accept-Language, else English; `<html lang>` and `dir` tell the
truth; a German request gets its consent text and confirmation in German; staff pages stay English."""

import html
import re
import time

import sqlalchemy as sa

from leads import consent
from leads.extensions import db
from leads.intake import form_token
from leads.messaging import tokens
from leads.messaging.email import render_email
from leads.models import Consent, EmailMessage, Lead, Quote
from leads.patients.self_service import withdraw_consent
from tests.integration.test_quotes import patient, provider, quote_form, two_clinics_accept
from tests.quote_support import NOTHING_STORED, answers, client_with_own_address, confirmation, stored_counts
from tests.staff_support import signed_in_client

GERMAN_HEADING = "Kostenloses Angebot für eine Behandlung in Dänemark anfragen"
ENGLISH_HEADING = "Ask for a free quote for treatment in Denmark"


def _html_tag(response) -> str:
    return re.search(r"<html[^>]*>", response.get_data(as_text=True)).group(0)


def test_a_links_lang_sets_the_page_language_and_direction(client):
    arabic = client.get("/quote?lang=ar")
    assert _html_tag(arabic) == '<html lang="ar" dir="rtl">'
    assert "اطلب عرض سعر مجانيًا للعلاج في الدنمارك" in arabic.get_data(as_text=True)
    german = client.get("/quote?lang=de&treatment=neurorehabilitation-spinal-cord-injury")
    assert _html_tag(german) == '<html lang="de" dir="ltr">'
    assert GERMAN_HEADING in german.get_data(as_text=True)


def test_the_browsers_languages_count_when_nothing_else_says(client):
    page = client.get("/quote", headers={"Accept-Language": "fi, sv;q=0.8, en;q=0.5"})
    assert _html_tag(page) == '<html lang="sv" dir="ltr">'
    unknown = client.get("/quote", headers={"Accept-Language": "fi, pl"})
    assert _html_tag(unknown) == '<html lang="en" dir="ltr">'
    assert ENGLISH_HEADING in unknown.get_data(as_text=True)


def test_the_patients_own_choice_beats_a_link_and_the_browser_and_lasts_the_visit(client):
    chosen = client.get("/quote?language=nb", headers={"Accept-Language": "de"})
    assert _html_tag(chosen) == '<html lang="nb" dir="ltr">'
    assert _html_tag(client.get("/quote?lang=de", headers={"Accept-Language": "de"})) == (
        '<html lang="nb" dir="ltr">'
    )
    assert _html_tag(client.get("/privacy")) == '<html lang="nb" dir="ltr">'
    assert "Personvernerklæring" in client.get("/privacy").get_data(as_text=True)


def test_an_unknown_language_in_the_menu_or_a_link_changes_nothing(client):
    page = client.get("/quote?language=xx&lang=zz")
    assert _html_tag(page) == '<html lang="en" dir="ltr">'
    with client.session_transaction() as session:
        assert "language" not in session


def _menu(response) -> str:
    return re.search(r'<nav class="language-menu".*?</nav>', response.get_data(as_text=True), re.S).group(0)


def _menu_link(response, code: str) -> str:
    """Where the menu's choice of `code` leads: a link's address, or the address a button sends to."""
    target = re.search(rf'(?:href|formaction)="([^"]+)"[^>]*lang="{code}"', _menu(response))
    return html.unescape(target.group(1))


def test_the_menu_offers_every_language_by_its_own_name_and_keeps_the_links_answers(client):
    menu = _menu(client.get("/privacy?lang=da&treatment=neurorehabilitation-spinal-cord-injury"))
    for code, name in (("en", "English"), ("de", "Deutsch"), ("ar", "العربية"), ("nb", "Norsk bokmål")):
        link = re.search(rf'<a href="([^"]+)" lang="{code}" hreflang="{code}"[^>]*>{name}</a>', menu)
        assert link, f"no menu link for {code}"
        assert "treatment=neurorehabilitation-spinal-cord-injury" in link.group(1)
        assert f"language={code}" in link.group(1)
    assert 'aria-current="true">Dansk</a>' in menu
    assert "<button" not in menu


def test_on_the_form_each_language_is_a_button_of_the_form_that_works_without_javascript(client, taxonomy):
    """Buttons of the form, not links: choosing a language sends the answers typed so far, marked as
    a language switch, to the menu's address; the form's first button sends the form, so Enter in a
    field still sends it."""
    response = client.get("/quote?treatment=neurorehabilitation-spinal-cord-injury&lang=da")
    page = response.get_data(as_text=True)
    assert '<form method="post" action="/quote" novalidate class="quote-form" id="quote-form">' in page
    menu = _menu(response)
    assert "<a " not in menu
    for code, name in (("en", "English"), ("de", "Deutsch"), ("ar", "العربية"), ("nb", "Norsk bokmål")):
        button = re.search(
            rf'<button type="submit" form="quote-form" name="switch_language" value="{code}"\s+'
            rf'formaction="([^"]+)" formnovalidate lang="{code}">{name}</button>',
            menu,
        )
        assert button, f"no menu button for {code}"
        address = html.unescape(button.group(1))
        assert address.startswith("/quote?") and f"language={code}" in address
        assert "treatment=neurorehabilitation-spinal-cord-injury" in address
    assert 'aria-current="true">Dansk</button>' in menu
    first = re.search(r'<button type="submit" form="quote-form"[^>]*>', page).group(0)
    assert "name=" not in first and 'tabindex="-1"' in first and 'aria-hidden="true"' in first
    assert page.index(first) < page.index('name="switch_language"')


def test_a_language_switch_brings_every_answer_back_in_that_language_unchecked_and_unstored(app, taxonomy):
    """What a language button sends (the answers, wrong ones too, and `switch_language`): the form
    again in the new language, every answer kept, no error shown, nothing stored, and the consent
    boxes to be ticked again against the wording in that language."""
    client = client_with_own_address(app)
    client.get("/quote?language=en")
    sent = answers(app, email="nobody", preferred_language="de", switch_language="da")
    response = client.post("/quote?language=da", data=sent)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _html_tag(response) == '<html lang="da" dir="ltr">'
    assert "Bed om et gratis tilbud på behandling i Danmark" in page
    for name in ("full_name", "email", "phone"):
        value = re.escape(html.escape(sent[name]))
        assert re.search(rf'name="{name}" type="[a-z]+" value="{value}"', page), name
    for name in ("country", "preferred_language", "treatment", "condition"):
        select = re.search(rf'<select id="{name}" name="{name}".*?</select>', page, re.S).group(0)
        assert re.search(rf'<option value="{sent[name]}"[^>]* selected', select), name
    details = re.search(r'<textarea id="details"[^>]*>([^<]*)</textarea>', page, re.S).group(1)
    assert html.unescape(details) == sent["details"]
    for name in ("timeframe", "budget", "contact_preference"):
        assert re.search(rf'name="{name}" value="{sent[name]}" checked', page), name
    for name in ("consent_share", "consent_contact"):
        box = re.search(rf'<input[^>]*id="{name}"[^>]*>', page).group(0)
        assert "checked" not in box
    assert consent.current("da").share in page
    assert 'id="error-summary"' not in page and "aria-invalid" not in page
    assert stored_counts() == NOTHING_STORED
    with client.session_transaction() as session:
        assert session["language"] == "da"  # the choice lasts the visit, as a link's does


def test_the_menu_of_a_page_no_link_can_open_leads_to_the_page_with_its_form(app, client, taxonomy):
    own_page = f"/my-request/{tokens.make_patient_token(1)}"
    followed = client.get(f"{own_page}/withdraw?lang=de")  # an address that only takes the sent form
    assert followed.status_code == 405
    assert _menu_link(followed, "sv") == f"{own_page}?language=sv"
    # Where a link opens the address itself, the menu keeps it and its parameters.
    refused = client_with_own_address(app).post("/quote?lang=de", data=answers(app, full_name=""))
    assert refused.status_code == 422 and _menu_link(refused, "sv") == "/quote?lang=de&language=sv"
    missing = client.get("/quote/nowhere?lang=de")
    assert missing.status_code == 404 and _menu_link(missing, "sv") == "/quote/nowhere?lang=de&language=sv"


def test_staff_pages_stay_in_english_whatever_the_patient_chose(client):
    client.get("/quote?language=de")
    login = client.get("/staff/login", headers={"Accept-Language": "de"})
    assert _html_tag(login) == '<html lang="en" dir="ltr">'
    assert 'class="language-menu"' not in login.get_data(as_text=True)


def test_errors_on_the_form_are_in_the_patients_language(app, taxonomy):
    client = client_with_own_address(app)
    client.get("/quote?language=de")
    response = client.post("/quote", data=answers(app, full_name="", email="nobody", consent_share=None))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in (
        "Bitte prüfen Sie Ihre Angaben",
        "Geben Sie Ihren vollständigen Namen ein",
        "Geben Sie eine E-Mail-Adresse mit einem @ ein",
        "Setzen Sie hier ein Häkchen, damit wir Ihre Anfrage",
    ):
        assert message in page
    assert "Enter your full name" not in page


def test_a_request_sent_in_german_records_the_german_consent_and_gets_its_confirmation_in_german(
    app, taxonomy
):
    client = client_with_own_address(app)
    form_page = client.get("/quote?lang=de").get_data(as_text=True)
    german = consent.current("de")
    assert german.share in form_page
    assert 'value="de" selected' in form_page  # the language to write in follows the page's
    token = form_token.issue(
        app.config["SECRET_KEY"],
        consent_version=consent.CURRENT_VERSION,
        consent_language="de",
        now=time.time() - 10,
    )
    response = client.post("/quote?lang=de", data=answers(app, preferred_language="de", form_token=token))
    assert response.status_code == 303

    lead = db.session.scalar(sa.select(Lead))
    record = db.session.scalar(sa.select(Consent))
    assert (record.text_version, record.language, record.text_hash) == (
        consent.CURRENT_VERSION,
        "de",
        german.sha256,
    )
    email = confirmation()
    assert email.subject == f"Ihre Angebotsanfrage {lead.reference}"
    assert "Vielen Dank für Ihre Anfrage nach einem kostenlosen Angebot" in email.body_text
    assert "WIE ES WEITERGEHT" in email.body_text
    assert '<html lang="de" dir="ltr">' in email.body_html
    assert "Thank you" not in email.body_text


def test_a_patient_with_a_language_we_do_not_write_gets_english(app, taxonomy):
    client = client_with_own_address(app)
    response = client.post("/quote", data=answers(app, preferred_language="pl"))
    assert response.status_code == 303
    email = confirmation()
    assert email.subject.startswith("Your quote request ")
    record = db.session.scalar(sa.select(Consent))
    assert record.language == "en"


def test_a_german_patients_quote_emails_are_german_and_their_link_opens_their_page_in_german(
    app, client, taxonomy
):
    lead, first, second = two_clinics_accept(client)
    lead.preferred_language = "de"
    db.session.commit()
    assert client.post(provider(first) + "/quote", data=quote_form()).status_code == 303
    client.post(provider(first) + "/quote/withdraw")

    def email(template):
        return db.session.scalar(sa.select(EmailMessage).filter_by(template=template))

    quoted, withdrawn = email("patient_quote"), email("patient_quote_withdrawn")
    assert quoted.subject == f"Sie haben ein neues Angebot zu Ihrer Anfrage {lead.reference}"
    assert withdrawn.subject == f"Eine Klinik hat ihr Angebot zu Ihrer Anfrage {lead.reference} zurückgezogen"
    assert "?lang=de" in quoted.body_text  # their own page opens in German
    link = re.search(r"http\S+/my-request/\S+", quoted.body_text).group(0)
    german = client.get(link.removeprefix(app.config["BASE_URL"])).get_data(as_text=True)
    # The withdrawn quote listed under its German heading (its line's own words are a catalog entry).
    assert '<html lang="de" dir="ltr">' in german and "Weitere Angebote" in german


def test_coordinators_see_the_consent_in_the_language_the_patient_read_it(app, taxonomy):
    token = form_token.issue(
        app.config["SECRET_KEY"],
        consent_version=consent.CURRENT_VERSION,
        consent_language="ar",
        now=time.time() - 10,
    )
    client_with_own_address(app).post("/quote?lang=ar", data=answers(app, form_token=token))
    lead = db.session.scalar(sa.select(Lead))
    coordinator, _ = signed_in_client(app)
    page = coordinator.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in page  # the staff page itself stays English
    assert f'<blockquote lang="ar" dir="rtl"><p>{consent.current("ar").share}</p>' in page
    assert "shown in Arabic (ar)" in page


def test_a_form_sent_again_keeps_the_consent_wording_its_token_recorded_marked_with_its_language(
    app, taxonomy
):
    """Opened in English, sent from a German page: the English wording the token recorded is shown
    again (it is what the patient agrees to) and marked as English on the German page."""
    client = client_with_own_address(app)
    client.get("/quote?language=de")
    response = client.post("/quote", data=answers(app, full_name=""))  # an English token
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and '<html lang="de" dir="ltr">' in page
    assert f'<span lang="en" dir="ltr">{consent.current("en").share}</span>' in page
    assert consent.current("de").share not in page


def test_a_patient_whose_request_closed_is_told_so_in_their_language_not_in_the_clinics_words(
    app, client, taxonomy
):
    lead, first, _ = two_clinics_accept(client)
    assert client.post(provider(first) + "/quote", data=quote_form()).status_code == 303
    quote = db.session.scalar(sa.select(Quote))
    withdraw_consent(lead.id)
    page = client.get(f"{patient(lead)}/quotes/{quote.id}/choose?lang=de", follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "Ihre Anfrage ist nicht mehr offen" in text
    assert "The patient has withdrawn" not in text  # the clinics' wording of the same rule
    assert db.session.get(Quote, quote.id).status != "chosen"


def test_wtforms_own_messages_follow_the_page_language_from_a_catalog_read_once(app, taxonomy):
    from flask import request
    from flask_babel import refresh
    from flask_wtf import FlaskForm

    from leads import i18n

    def required_message(language: str) -> str:
        with app.test_request_context(f"/quote?language={language}"):
            refresh()  # the test's app context outlives each request: forget the last one's locale
            app.preprocess_request()
            assert request.wtforms_translations is i18n._WTFORMS_CATALOGS  # not Flask-WTF's own load
            return FlaskForm.Meta().get_translations(None).gettext("This field is required.")

    assert required_message("de") == "Dieses Feld wird benötigt."
    before = i18n._wtforms_catalog.cache_info()
    assert required_message("de") == "Dieses Feld wird benötigt."
    after = i18n._wtforms_catalog.cache_info()
    assert after.misses == before.misses and after.hits > before.hits  # German again: not read again
    assert required_message("en") == "This field is required."


# A clinic's name that would show mirrored or reordered inside an Arabic sentence, and must stay escaped.
ODD_NAME = "Nordlys <Neuro> (demo)"
ISOLATED = f"\u2068{html.escape(ODD_NAME, quote=False)}\u2069"
BDI = f"<bdi>{html.escape(ODD_NAME, quote=False)}</bdi>"
# Unicode's FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE.
ISOLATES = ("\u2068", "\u2069")
# The names each patient email sets in a sentence.
PATIENT_EMAILS = {
    "patient_provider_accepted": ("full_name", "provider_name", "provider_city"),
    "patient_quote": ("full_name", "provider_name"),
    "patient_quote_withdrawn": ("full_name", "provider_name"),
    "patient_quote_chosen": ("full_name", "provider_name"),
    "patient_quote_reminder": ("full_name",),
}


def _named_oddly(assignment) -> str:
    assignment.provider.name = ODD_NAME
    db.session.commit()
    return ODD_NAME


def test_a_clinics_name_in_an_arabic_sentence_on_the_patients_pages_is_isolated_and_escaped(
    app, client, taxonomy
):
    lead, first, second = two_clinics_accept(client)
    _named_oddly(first)
    for assignment in (first, second):
        assert client.post(provider(assignment) + "/quote", data=quote_form()).status_code == 303
    client.post(provider(second) + "/quote/withdraw")
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    client.get("/quote?language=ar")

    choose = client.get(f"{patient(lead)}/quotes/{quote.id}/choose").get_data(as_text=True)
    assert re.search(r"<title>([^<]*)</title>", choose).group(1).count(ISOLATED) == 1
    assert re.search(r"<h1>(.*?)</h1>", choose).group(1).count(BDI) == 1
    assert re.search(r'<h2 class="quote-clinic"[^>]*>(.*?)</h2>', choose).group(1).startswith(BDI)
    assert re.search(r'<button type="submit">(.*?)</button>', choose).group(1).count(BDI) == 1
    assert choose.count(BDI) == 4  # the heading, the sentence asking to check, the quote, the button
    assert ODD_NAME not in choose

    other_name = html.escape(second.provider.name, quote=False)
    listing = client.get(patient(lead)).get_data(as_text=True)
    other_quotes = listing.split("<h3>", 2)[-1]
    assert f"<bdi>{other_name}</bdi>" in other_quotes  # "… withdrew its quote." in Arabic
    assert listing.count(BDI) == 1  # the live quote's heading

    revised = client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data={"revision": quote.revision + 1})
    refused = client.get(revised.location).get_data(as_text=True)
    assert ISOLATED in re.search(r'<p class="flash flash-error">(.*?)</p>', refused).group(1)

    chosen = client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data={"revision": quote.revision})
    done = client.get(chosen.location).get_data(as_text=True)
    assert ISOLATED in re.search(r'<p class="flash flash-info">(.*?)</p>', done).group(1)


def test_a_clinics_and_the_patients_names_in_the_patients_emails_are_isolated_and_escaped(app):
    names = {"full_name": "Karim (Haddad)", "provider_name": ODD_NAME, "provider_city": "Aarhus C"}
    for template, fields in PATIENT_EMAILS.items():
        email = render_email(
            template, "ar", reference="Q-ABCDEF", link="https://example.org/r", revised=False, **names
        )
        for field in fields:
            escaped = html.escape(names[field], quote=False)
            assert f"<bdi>{escaped}</bdi>" in email.html, (template, field)
            assert f"\u2068{names[field]}\u2069" in email.text, (template, field)
        assert "<" + "Neuro>" not in email.html


def _patient_email(template: str, language: str, **names):
    return render_email(
        template, language, reference="Q-ABCDEF", link="https://example.org/r", revised=False, **names
    )


def test_latin_names_in_an_english_or_german_patients_email_carry_no_invisible_direction_marks(app):
    """Some mail clients show U+2068 and U+2069 as boxes; around a Latin name in a left-to-right
    language they guard nothing. The HTML part still isolates every name with <bdi>."""
    names = {
        "full_name": "Hans Müller",
        "provider_name": "Nordlys Klinik (demo)",
        "provider_city": "Aarhus C",
    }
    for language in ("en", "de"):
        for template, fields in PATIENT_EMAILS.items():
            email = _patient_email(template, language, **names)
            assert not any(mark in email.text + email.subject for mark in ISOLATES), (language, template)
            for field in fields:
                assert names[field] in email.text, (language, template, field)
                assert f"<bdi>{html.escape(names[field], quote=False)}</bdi>" in email.html


def test_a_name_written_the_other_way_than_the_email_is_still_isolated_in_its_text_part(app):
    """An Arabic name in a German sentence, a Latin one in an Arabic sentence: either could
    reorder the words around it, or turn the line it opens the other way."""
    german = _patient_email("patient_quote", "de", full_name="كريم حداد", provider_name="Nordlys Klinik")
    assert "\u2068كريم حداد\u2069" in german.text and "\u2068Nordlys" not in german.text
    arabic = _patient_email("patient_quote", "ar", full_name="كريم حداد", provider_name="Nordlys Klinik")
    assert "\u2068Nordlys Klinik\u2069" in arabic.text and "\u2068كريم" not in arabic.text


def test_a_clinics_message_is_marked_with_the_clinics_language_on_the_patients_page(app, client, taxonomy):
    lead, first, _ = two_clinics_accept(client)
    first.provider.notification_language = "da"
    db.session.commit()
    form = quote_form(message="Vi glæder os til at møde dig.")
    assert client.post(provider(first) + "/quote", data=form).status_code == 303
    quote = db.session.scalar(sa.select(Quote))
    for language in ("ar", "da", "en"):
        client.get(f"/quote?language={language}")
        for url in (patient(lead), f"{patient(lead)}/quotes/{quote.id}/choose"):
            page = client.get(url).get_data(as_text=True)
            assert '<span class="free-text" lang="da" dir="auto">Vi glæder os til at møde dig.</span>' in page


def test_the_danish_chosen_clinic_email_quotes_the_button_with_danish_quotation_marks(app):
    email = render_email(
        "provider_quote_chosen",
        "da",
        reference="Q-ABCDEF",
        provider_name="Nordlys Klinik",
        contact_preference="telefon",
        link="https://example.org/p",
    )
    for part in (email.text, email.html):
        assert "»Bekræft, at behandlingen er booket«" in part
        assert not set(part) & set("„“”")

"""A clinic's pages behind its signed link are in its notification language, the one its emails
are written in: the request, its answers, the quote form and its messages, and the times in
Danish time, named."""

import re

import pytest
import sqlalchemy as sa

from leads.dev import seed
from leads.extensions import db
from leads.messaging import tokens
from leads.models import Assignment, Provider, Quote
from leads.routing.service import route_lead
from tests.factories import LeadFactory
from tests.integration.test_quotes import quote_form

SENTINELS = re.compile(
    r"\b(the|your|you|and|with|please|request|patient|accept|decline|quote|treatment|clinic)\b", re.I
)


@pytest.fixture
def first(app, taxonomy):
    seed.load_demo_providers()
    lead = LeadFactory(full_name="Freja Ørsted", details="C6")
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    return db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).first()


def _link(assignment) -> str:
    return f"/p/{tokens.make_assignment_token(assignment.id)}"


def _reads(clinic: Provider, language: str) -> None:
    clinic.notification_language = language
    db.session.commit()


def _words(html: str) -> list[str]:
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text).replace("Danish Treatment Quotes", " ")
    return sorted({m.lower() for m in SENTINELS.findall(text)})


def test_a_danish_reading_clinic_gets_its_page_answers_and_messages_in_danish(client, first):
    _reads(first.provider, "da")
    page = client.get(_link(first)).get_data(as_text=True)
    assert '<html lang="da"' in page and f"Tilbudsforespørgsel {first.lead.reference}" in page
    assert _words(page) == [], "English words on the clinic's page"

    refused = client.post(_link(first) + "/decline", data={})
    assert refused.status_code == 400
    assert "Vælg en årsag til afvisningen" in refused.get_data(as_text=True)

    client.post(_link(first) + "/accept", data={})
    accepted = client.get(_link(first)).get_data(as_text=True)
    assert "Du har accepteret denne forespørgsel" in accepted
    assert re.search(r"Besvaret \d+\. \w+ \d{4} \d\d\.\d\d CE[S]?T\.", accepted)  # Danish time, named


def test_a_danish_clinics_reason_is_a_choice_with_a_capital_and_no_capital_after_a_colon(client, first):
    _reads(first.provider, "da")
    form = client.get(_link(first)).get_data(as_text=True)
    assert re.search(r">\s*Ingen kapacitet lige nu\s*</label>", form)
    client.post(_link(first) + "/decline", data={"reason": "no_capacity"})
    assert "Årsag: ingen kapacitet lige nu." in client.get(_link(first)).get_data(as_text=True)


def test_a_clinics_reason_reads_the_same_way_in_english(client, first):
    _reads(first.provider, "en")
    form = client.get(_link(first)).get_data(as_text=True)
    assert re.search(r">\s*No capacity at the moment\s*</label>", form)
    client.post(_link(first) + "/decline", data={"reason": "no_capacity"})
    assert "Reason: no capacity at the moment." in client.get(_link(first)).get_data(as_text=True)


def test_an_english_and_a_german_reading_clinic_read_their_own(client, first):
    _reads(first.provider, "en")
    assert f"Quote request {first.lead.reference}" in client.get(_link(first)).get_data(as_text=True)
    _reads(first.provider, "de")
    page = client.get(_link(first)).get_data(as_text=True)
    assert '<html lang="de"' in page and f"Angebotsanfrage {first.lead.reference}" in page


@pytest.mark.parametrize(
    ("language", "most_characters", "highest_price"),
    [("en", "4,000", "10,000,000"), ("da", "4.000", "10.000.000"), ("sv", "4\xa0000", "10\xa0000\xa0000")],
)
def test_the_quote_forms_limits_are_written_in_the_clinics_number_format(
    client, first, language, most_characters, highest_price
):
    _reads(first.provider, language)
    client.post(_link(first) + "/accept", data={})
    response = client.post(_link(first) + "/quote", data=quote_form(message="x" * 4001, price_to="999999999"))
    assert response.status_code == 400
    errors = dict(
        re.findall(r'<p class="field-error" id="([\w-]+)-error">(.*?)</p>', response.get_data(as_text=True))
    )
    assert most_characters in errors["message"] and highest_price in errors["price_to"]


@pytest.mark.parametrize(
    ("language", "price_from", "price_to"),
    [
        ("da", "20.000", "30.000"),
        ("de", "20.000", "30.000"),
        ("sv", "20 000", "30 000"),
        ("en", "20,000", "30,000"),
    ],
)
def test_a_clinic_types_its_prices_with_its_own_thousands_separator(
    client, first, language, price_from, price_to
):
    _reads(first.provider, language)
    client.post(_link(first) + "/accept", data={})
    sent = client.post(_link(first) + "/quote", data=quote_form(price_from=price_from, price_to=price_to))
    assert sent.status_code == 303
    db.session.expire_all()
    revision = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id)).current
    assert (revision.price_from, revision.price_to) == (20000, 30000)
    # A text box: a browser's number box would refuse the separator before the server saw it.
    assert re.search(
        r'<input [^>]*id="price_from" inputmode="numeric" name="price_from" type="text"',
        client.get(_link(first)).get_data(as_text=True),
    )


@pytest.mark.parametrize(
    ("language", "typed", "message"),
    [
        ("da", "20,5", "Skriv prisen som et helt tal, for eksempel 20000"),
        ("da", "20.00", "Skriv prisen som et helt tal, for eksempel 20000"),
        ("en", "20.000", "Enter the price as a whole number, for example 20000"),
    ],
)
def test_a_decimal_or_ambiguous_price_gets_the_whole_number_message_on_its_field(
    client, first, language, typed, message
):
    _reads(first.provider, language)
    client.post(_link(first) + "/accept", data={})
    refused = client.post(_link(first) + "/quote", data=quote_form(price_from=typed))
    assert refused.status_code == 400
    errors = dict(
        re.findall(r'<p class="field-error" id="([\w-]+)-error">(.*?)</p>', refused.get_data(as_text=True))
    )
    assert message in errors["price_from"] and "price_to" not in errors
    assert f'value="{typed}"' in refused.get_data(as_text=True)  # kept as typed, to correct
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Quote)) == 0


def test_a_bad_link_is_explained_in_english(client, app):
    page = client.get("/p/not-a-token")
    assert page.status_code == 404 and '<html lang="en"' in page.get_data(as_text=True)


def test_a_danish_clinic_is_told_in_danish_that_a_withdrawn_request_is_gone(client, first):
    _reads(first.provider, "da")
    first.lead.status = "withdrawn"
    db.session.commit()
    page = client.get(_link(first))
    assert page.status_code == 410
    assert "Patienten har trukket forespørgslen tilbage" in page.get_data(as_text=True)

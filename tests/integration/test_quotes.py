"""Quotes: a clinic that accepted sends, revises and withdraws a written quote from its link;
the patient compares the live quotes on their own page and chooses one, or none."""

import re
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
import time_machine

import leads.messaging.email as email_module
from leads.extensions import db
from leads.i18n import isolate
from leads.messaging import tokens
from leads.messaging.email import deliver_email
from leads.models import Assignment, EmailMessage, Lead, LeadEvent, Provider, Quote, QuoteRevision
from leads.notes import describe_reason
from leads.quotes import service as quotes
from leads.quotes.service import choose_quote
from leads.routing.escalation import escalate_assignments
from leads.routing.service import reroute_lead, route_lead
from leads.staff import lead_actions
from leads.staff.lead_actions import resend_email
from leads.timeutil import utcnow
from leads.workdays import DANISH_TIME, add_working_days, danish_date
from tests.factories import LeadFactory, UserFactory
from tests.helpers import count_rows, load_demo_providers_reading_english
from tests.quote_support import a_clinic_left_for, offer
from tests.staff_support import signed_in_client

# Each step locks the lead row (FOR UPDATE on PostgreSQL).
pytestmark = pytest.mark.pg


@pytest.fixture
def accepted(app, client, taxonomy):
    return two_clinics_accept(client)


def two_clinics_accept(client):
    """A routed lead whose first two clinics accepted it from their links."""
    load_demo_providers_reading_english()
    lead = LeadFactory(contact_preference="phone")
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    first, second = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()[:2]
    for assignment in (first, second):
        assert client.post(provider(assignment) + "/accept", data={}).status_code == 303
    db.session.expire_all()
    return db.session.get(Lead, lead.id), first, second


def provider(assignment):
    return f"/p/{tokens.make_assignment_token(assignment.id)}"


def patient(lead):
    return f"/my-request/{tokens.make_patient_token(lead.id)}"


def choice(quote) -> dict:
    """The confirmation step's form as the patient sends it: the revision it showed them."""
    return {"revision": quote.revision}


def quote_form(**changes):
    form = {
        "price_from": "20000",
        "price_to": "30000",
        "currency": "EUR",
        "includes": ["treatment", "rehabilitation"],
        "earliest_start": (utcnow().date() + timedelta(days=40)).isoformat(),
        "valid_days": "30",
        "needs_records": "y",
        "message": "We would like to see your latest MRI.",
    }
    form.update(changes)
    return form


def events(lead, kind):
    return db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind=kind)).all()


def emails(template):
    return db.session.scalars(sa.select(EmailMessage).filter_by(template=template)).all()


def test_a_first_quote_is_stored_moves_the_lead_to_quoted_and_emails_the_patient_without_the_price(
    client, accepted
):
    lead, first, _ = accepted
    response = client.post(provider(first) + "/quote", data=quote_form())
    assert response.status_code == 303
    db.session.expire_all()
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    revision = quote.current
    assert (quote.status, quote.revision, revision.price_from, revision.price_to) == ("live", 1, 20000, 30000)
    assert revision.includes == ["treatment", "rehabilitation"] and revision.needs_records is True
    assert revision.valid_days == 30 and revision.valid_until > utcnow() + timedelta(days=29)
    assert db.session.get(Lead, lead.id).status == "quoted"
    assert len(events(lead, "quote_sent")) == 1
    [status_change] = [e for e in events(lead, "status_changed") if e.to_status == "quoted"]
    assert status_change.from_status == "contacted"
    [email] = emails("patient_quote")
    assert email.to_address == lead.email
    assert tokens.make_patient_token(lead.id).split(".")[0] in email.body_text
    for secret in ("20,000", "20000", "MRI", lead.details, lead.treatment.name):
        assert secret not in email.body_text and secret not in email.body_html


def test_a_revision_keeps_the_first_and_tells_the_patient_again(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(first) + "/quote", data=quote_form(price_from="18000", price_to="25000"))
    db.session.expire_all()
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    assert [(r.number, r.price_from) for r in quote.revisions] == [(1, 20000), (2, 18000)]
    assert quote.revision == 2 and quote.status == "live"
    assert len(events(lead, "quote_revised")) == 1
    assert len(emails("patient_quote")) == 2
    page = client.get(provider(first)).get_data(as_text=True)
    assert "Revise your quote" in page and "Revision 1" in page


def test_a_quote_sent_twice_from_the_page_it_was_written_on_is_one_quote_and_one_email(client, accepted):
    """A double click on Send, or a second tab opened on the same page: the form says which revision
    it was written on, and a quote sent since then refuses it."""
    lead, first, _ = accepted
    page = client.get(provider(first)).get_data(as_text=True)
    assert '<input id="revision" name="revision" type="hidden" value="0">' in page
    assert client.post(provider(first) + "/quote", data=quote_form(revision="0")).status_code == 303
    client.get(provider(first))  # the first send's result
    client.post(provider(first) + "/quote", data=quote_form(revision="0", price_from="18000"))
    page = client.get(provider(first)).get_data(as_text=True)
    assert "Your quote changed after this page was opened" in page and "revised quote was sent" not in page
    db.session.expire_all()
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    assert [(r.number, r.price_from) for r in quote.revisions] == [(1, 20000)]
    assert len(emails("patient_quote")) == 1 and events(lead, "quote_revised") == []
    # The revision form now carries revision 1, and sending it revises the quote.
    assert '<input id="revision" name="revision" type="hidden" value="1">' in page
    assert (
        client.post(provider(first) + "/quote", data=quote_form(revision="1", price_from="18000")).status_code
        == 303
    )
    db.session.expire_all()
    assert [r.price_from for r in db.session.get(Quote, quote.id).revisions] == [20000, 18000]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"price_from": "30000", "price_to": "20000"}, "price_to", "cannot be below the lowest price"),
        ({"price_from": "-5"}, "price_from", "cannot be negative"),
        ({"price_to": "999999999"}, "price_to", "Enter a price between 1 and 10,000,000"),
        ({"price_from": "lots"}, "price_from", "whole number"),
        ({"currency": "USD"}, "currency", "Choose EUR or DKK"),
        ({"valid_days": "0"}, "valid_days", "validity in the past is not possible"),
        ({"valid_days": "-3"}, "valid_days", "validity in the past is not possible"),
        ({"earliest_start": "2001-01-01"}, "earliest_start", "cannot be in the past"),
        ({"includes": []}, "includes", "Tick at least one"),
        ({"includes": ["spa"]}, "includes", "Choose only from the listed items"),
        # PostgreSQL refuses NUL in text (it was a 500 there); no control character is typed.
        ({"message": "Hello\x00 there"}, "message", "Remove the invisible control characters"),
        ({"message": "Hello\x1b there"}, "message", "Remove the invisible control characters"),
    ],
)
def test_bad_quote_input_gets_a_message_on_its_field_and_writes_nothing(
    client, accepted, changes, field, message
):
    lead, first, _ = accepted
    response = client.post(provider(first) + "/quote", data=quote_form(**changes))
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert message in body and body.count(f'id="{field}-error"') == 1
    # Read out as an error beside its field, as the patient's pages do.
    assert f'id="{field}-error"><span class="visually-hidden">Error:</span> ' in body
    # The page opens with a focused summary whose link leads to the field (a box group: its first box).
    anchor = f"{field}-0" if field == "includes" else field
    summary = body[body.index('id="error-summary"') : body.index("</ul>", body.index('id="error-summary"'))]
    assert "<title>Error: " in body and "autofocus" in summary and f'<a href="#{anchor}">' in summary
    assert f'id="{anchor}"' in body
    # The field is marked invalid (each box of a group: a fieldset cannot carry the attribute).
    assert re.search(rf'<(input|select|textarea) [^>]*aria-invalid="true"[^>]* id="{anchor}"', body)
    assert count_rows(Quote) == 0 and count_rows(QuoteRevision) == 0
    assert db.session.get(Lead, lead.id).status == "contacted"
    assert emails("patient_quote") == []


def test_just_after_danish_midnight_the_clinics_yesterday_is_in_the_past_though_utc_still_has_it(
    client, accepted
):
    lead, first, _ = accepted
    next_midnight = datetime.combine(danish_date(utcnow()) + timedelta(days=1), time(0), tzinfo=DANISH_TIME)
    moment = next_midnight + timedelta(minutes=30)
    today, yesterday = danish_date(moment), danish_date(moment) - timedelta(days=1)
    assert moment.astimezone(UTC).date() == yesterday  # the edge: UTC has not reached the Danish date
    with time_machine.travel(moment, tick=False):
        refused = client.post(
            provider(first) + "/quote", data=quote_form(earliest_start=yesterday.isoformat())
        )
        assert refused.status_code == 400 and "cannot be in the past" in refused.get_data(as_text=True)
        assert count_rows(Quote) == 0
        sent = client.post(provider(first) + "/quote", data=quote_form(earliest_start=today.isoformat()))
        assert sent.status_code == 303 and count_rows(Quote) == 1


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2027, 1, 14, 23, 59, tzinfo=UTC),  # 00:59 CET on the 15th, just before UTC's midnight
        datetime(2027, 7, 1, 22, 30, tzinfo=UTC),  # 00:30 CEST on the 2nd
    ],
)
def test_the_quote_service_itself_checks_the_earliest_start_against_the_danish_date(accepted, moment):
    lead, first, _ = accepted
    with pytest.raises(quotes.InvalidQuote) as refused:
        quotes.send_quote(first.id, replace(offer(), earliest_start=moment.date()), now=moment)
    assert list(refused.value.problems) == ["earliest_start"]
    assert count_rows(Quote) == 0


def test_just_after_danish_midnight_a_booking_for_the_clinics_yesterday_is_in_the_past(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    quote = db.session.scalar(sa.select(Quote))
    client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data=choice(quote))
    moment = datetime(2027, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 CEST on the 2nd
    with pytest.raises(quotes.QuoteRefused, match="cannot be in the past"):
        quotes.confirm_booking(first.id, date(2027, 7, 1), now=moment)
    assert db.session.get(Lead, lead.id).status == "chosen"
    quotes.confirm_booking(first.id, date(2027, 7, 2), now=moment)
    assert db.session.get(Lead, lead.id).status == "booked"


def test_the_quote_service_itself_refuses_a_control_character_in_the_message(accepted):
    """Whatever calls it, not the form alone: a NUL never reaches the database."""
    lead, first, _ = accepted
    with pytest.raises(quotes.InvalidQuote) as refused:
        quotes.send_quote(first.id, replace(offer(), message="Hello\x00 there"))
    assert {name: str(message) for name, message in refused.value.problems.items()} == {
        "message": "Remove the invisible control characters"
    }
    assert count_rows(Quote) == 0 and count_rows(QuoteRevision) == 0
    assert db.session.get(Lead, lead.id).status == "contacted"


def test_a_message_keeps_its_line_breaks_and_tabs(client, accepted):
    lead, first, _ = accepted
    message = "Dear patient,\r\n\tplease bring your latest MRI."
    assert client.post(provider(first) + "/quote", data=quote_form(message=message)).status_code == 303
    assert db.session.scalar(sa.select(QuoteRevision.message)) == message


def test_a_clinic_that_has_not_accepted_cannot_send_a_quote(client, app, taxonomy):
    load_demo_providers_reading_english()
    lead = LeadFactory()
    db.session.commit()
    route_lead(lead.id)
    waiting = db.session.scalar(sa.select(Assignment).filter_by(lead_id=lead.id))
    page = client.post(provider(waiting) + "/quote", data=quote_form(), follow_redirects=True)
    assert "Accept the request before you send a quote" in page.get_data(as_text=True)
    assert count_rows(Quote) == 0


def test_withdrawing_the_only_quote_takes_the_lead_back_to_contacted(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(first) + "/quote/withdraw")
    db.session.expire_all()
    assert db.session.scalar(sa.select(Quote)).status == "withdrawn"
    assert db.session.get(Lead, lead.id).status == "contacted"
    assert len(events(lead, "quote_withdrawn")) == 1
    assert "Your quotes" in client.get(patient(lead)).get_data(as_text=True)


def test_withdrawing_a_quote_again_says_there_is_none_live_and_changes_nothing(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(first) + "/quote/withdraw")
    again = client.post(provider(first) + "/quote/withdraw", follow_redirects=True)
    assert "There is no live quote to withdraw." in again.get_data(as_text=True)
    assert len(events(lead, "quote_withdrawn")) == 1


def test_the_patient_compares_live_quotes_with_conversion_evidence_and_answer_time(client, accepted):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(
        provider(second) + "/quote", data=quote_form(price_from="150000", price_to="150000", currency="DKK")
    )
    page = client.get(patient(lead)).get_data(as_text=True).replace("\xa0", " ")
    for clinic in (first.provider, second.provider):
        assert clinic.name in page and clinic.city in page
    # Money as the reader's language writes it (the patient's page is in English here).
    assert "€20,000 to €30,000" in page and "About DKK 149,200 to DKK 223,800" in page
    assert "DKK 150,000" in page and "About €20,100" in page
    assert "We would like to see your latest MRI." in page
    assert "The clinic answered in" in page and "Rehabilitation" in page
    assert page.count("Go ahead with this clinic") == 2


def test_after_choosing_the_patient_still_sees_the_price_and_terms_of_the_quote_they_chose(client, accepted):
    """The choice was made on these terms: they stay on the patient's page, not only its clinic's name."""
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form(price_from="21000", price_to="23000"))
    client.post(provider(second) + "/quote", data=quote_form(price_from="40000", price_to="45000"))
    chosen = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    client.post(f"{patient(lead)}/quotes/{chosen.id}/choose", data=choice(chosen))
    page = client.get(patient(lead)).get_data(as_text=True).replace("\xa0", " ")
    assert "You chose" in page
    assert "€21,000 to €23,000" in page and "We would like to see your latest MRI." in page
    assert "€40,000" not in page  # the quote not chosen is one closed line, as before
    assert "Go ahead with this clinic" not in page


def test_the_clinic_reads_its_own_quote_as_depending_on_the_patients_records_not_its_own(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form(needs_records="y"))
    clinic_page = client.get(provider(first)).get_data(as_text=True)
    assert "The price depends on reviewing the patient's medical records first" in clinic_page
    assert "your medical records" not in clinic_page
    patient_page = client.get(patient(lead)).get_data(as_text=True)
    assert "The price depends on the clinic reviewing your medical records first" in patient_page


def test_once_its_quote_is_chosen_the_clinic_is_no_longer_asked_to_send_one(client, accepted):
    lead, first, _ = accepted
    asked = "send your quote below"
    assert asked in client.get(provider(first)).get_data(as_text=True)
    client.post(provider(first) + "/quote", data=quote_form())
    assert asked not in client.get(provider(first)).get_data(as_text=True)
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data=choice(quote))
    page = client.get(provider(first)).get_data(as_text=True)
    assert asked not in page and "The patient chose your clinic" in page


def test_the_exchange_rate_is_written_as_the_readers_language_writes_that_currency(client, accepted):
    """Beside Danish prices ("20.000 €", "149.200 kr."), the rate reads "1 € = 7,46 kr.", not the
    currency code after a bare number ("7,46 DKK")."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    pages = {
        language: client.get(f"{patient(lead)}?language={language}")
        .get_data(as_text=True)
        .replace("\xa0", " ")
        for language in ("da", "en")
    }
    assert "1 € = 7,46 kr." in pages["da"] and "7,46 DKK" not in pages["da"]
    assert "€1 = DKK 7.46" in pages["en"]


@pytest.mark.parametrize(
    ("status", "booked", "sentence"),
    [
        ("chosen", False, r"You chose {clinic} on [^;]+\."),
        ("chosen", True, r"You chose {clinic} on [^;]+; your treatment is booked for [^;]+\."),
        ("withdrawn", False, r"{clinic} withdrew its quote\."),
        ("not_chosen", False, r"The quote from {clinic} is closed; you did not choose it\."),
        ("closed", False, r"The quote from {clinic} was closed before you chose\."),
        ("expired", False, r"The quote from {clinic} expired on [^;]+\."),
    ],
)
def test_each_other_quote_is_one_sentence_naming_its_clinic(client, accepted, status, booked, sentence):
    """One message per line with the clinic in it, so that a translation can put the name anywhere."""
    lead, first, _ = accepted
    quote = quotes.send_quote(first.id, offer())
    first.provider.name = "Klinik <Ø> & Søn"
    quote.status, quote.decided_at = status, utcnow()
    quote.treatment_date = (utcnow() + timedelta(days=60)).date() if booked else None
    db.session.commit()
    page = client.get(patient(lead)).get_data(as_text=True)
    others = page[page.index("<h3>Other quotes</h3>") :]
    line = " ".join(re.search(r"<li>(.*?)</li>", others, re.S)[1].split())
    clinic = re.escape("<bdi>Klinik &lt;Ø&gt; &amp; Søn</bdi>")  # isolated from the sentence, and escaped
    assert re.match(sentence.format(clinic=clinic), line), line


def test_an_investigational_treatment_carries_the_statement_wherever_the_quote_is_shown(client, accepted):
    lead, first, _ = accepted
    lead.treatment.evidence_status = "investigational"
    for offered in first.provider.treatments:
        if offered.treatment_id == lead.treatment_id:
            offered.evidence_status = "investigational"
    db.session.commit()
    client.post(provider(first) + "/quote", data=quote_form())
    quote = db.session.scalar(sa.select(Quote))
    for url in (patient(lead), provider(first), f"{patient(lead)}/quotes/{quote.id}/choose"):
        assert "This treatment is investigational" in client.get(url).get_data(as_text=True), url


def test_choosing_tells_the_chosen_clinic_thanks_the_other_and_never_counts_against_it(client, accepted):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form(price_from="25000"))
    first.provider.notification_language = "da"  # the demo clinic's own language, as seeded
    db.session.commit()
    chosen = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    confirm = client.get(f"{patient(lead)}/quotes/{chosen.id}/choose")
    assert "Yes, go ahead with" in confirm.get_data(as_text=True)
    done = client.post(
        f"{patient(lead)}/quotes/{chosen.id}/choose", data=choice(chosen), follow_redirects=True
    )
    assert "We have told" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "chosen"
    statuses = {q.assignment_id: q.status for q in db.session.scalars(sa.select(Quote))}
    assert statuses == {first.id: "chosen", second.id: "not_chosen"}
    assert db.session.get(Assignment, first.id).status == "accepted"
    assert db.session.get(Assignment, second.id).status == "not_chosen"
    [to_chosen] = emails("provider_quote_chosen")
    assert to_chosen.to_address in first.provider.notification_emails
    # The demo clinic reads Danish, which writes the way to be contacted in lower case mid-sentence.
    assert "kontaktes på denne måde: telefon." in to_chosen.body_text
    assert {e.to_address for e in emails("notice_provider_not_chosen")} == set(
        second.provider.notification_emails
    )
    assert len(events(lead, "quote_chosen")) == 1
    other = db.session.get(Provider, second.provider_id)
    assert other.accepted_count == 1
    # The other clinic's link now says the request is closed for it.
    assert client.get(provider(second)).status_code == 410


def test_the_patient_gets_one_email_confirming_their_choice_with_their_link_and_no_detail(
    client, accepted, app
):
    lead, first, second = accepted
    lead.preferred_language = "de"
    db.session.commit()
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form(price_from="25000"))
    chosen = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    choose = f"{patient(lead)}/quotes/{chosen.id}/choose"
    assert client.post(choose, data=choice(chosen)).status_code == 303
    # A second click, a retried request, the service run again: still one email.
    client.post(choose, data=choice(chosen))
    with pytest.raises(quotes.QuoteRefused):
        choose_quote(lead.id, chosen.id, chosen.revision)
    db.session.rollback()
    [told] = emails("patient_quote_chosen")
    assert (told.to_address, told.lead_id, told.reply_to) == (
        lead.email,
        lead.id,
        app.config["COORDINATOR_EMAIL"],
    )
    assert told.idempotency_key == f"quote-chosen:{chosen.id}:patient"
    for body in (told.body_text, told.body_html):
        assert first.provider.name in body and lead.reference in body
        # Their link, opening in their language; nothing of the quote or of their health.
        assert tokens.make_patient_token(lead.id).split(".")[0] in body and "lang=de" in body
        for secret in (
            "20,000",
            "20.000",
            "20000",
            "MRI",
            lead.details,
            lead.treatment.name,
            lead.condition.name,
        ):
            assert secret not in body
    assert second.provider.name not in told.body_text
    # In the patient's language (German here; a name in it, Latin like the sentence, unmarked).
    assert f"Guten Tag {lead.full_name}," in told.body_text and "Ihre Anfrage öffnen" in told.body_html


def test_a_second_choice_an_expired_a_withdrawn_and_a_foreign_quote_are_refused(client, accepted, app):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form(valid_days="1"))
    client.post(provider(second) + "/quote", data=quote_form())
    q1, q2 = db.session.scalars(sa.select(Quote).order_by(Quote.id)).all()

    client.post(provider(second) + "/quote/withdraw")
    withdrawn = client.post(f"{patient(lead)}/quotes/{q2.id}/choose", data=choice(q2), follow_redirects=True)
    assert "The clinic has withdrawn this quote" in withdrawn.get_data(as_text=True)

    with time_machine.travel(utcnow() + timedelta(days=3)):
        expired = client.post(
            f"{patient(lead)}/quotes/{q1.id}/choose", data=choice(q1), follow_redirects=True
        )
        assert "This quote expired" in expired.get_data(as_text=True)
        assert "ask the clinic to renew it" in expired.get_data(as_text=True)

    other = LeadFactory()
    db.session.commit()
    foreign = client.post(f"{patient(other)}/quotes/{q1.id}/choose", data=choice(q1), follow_redirects=True)
    assert "This quote is not part of your request" in foreign.get_data(as_text=True)
    db.session.expire_all()
    assert {q.status for q in db.session.scalars(sa.select(Quote))} == {"live", "withdrawn"}
    assert db.session.get(Lead, lead.id).status == "quoted"

    client.post(f"{patient(lead)}/quotes/{q1.id}/choose", data=choice(q1))
    again = client.post(f"{patient(lead)}/quotes/{q1.id}/choose", data=choice(q1), follow_redirects=True)
    assert "You have already chosen a clinic" in again.get_data(as_text=True)
    assert len(events(lead, "quote_chosen")) == 1


def _revision_shown(confirmation) -> int:
    """The revision the confirmation step's form carries."""
    return int(
        re.search(r'name="revision" type="hidden" value="(\d+)"', confirmation.get_data(as_text=True))[1]
    )


@pytest.mark.parametrize("sent", [{}, {"revision": ""}, {"revision": "latest"}])
def test_a_choice_sent_without_its_revision_tells_the_patient_nothing_was_chosen(client, accepted, sent):
    """Only a hand-made request lacks the confirmation step's revision: the patient's page comes
    back (400) with a focused summary saying so, the quotes still there to choose from."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))

    response = client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data=sent)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    summary = page[page.index('id="error-summary"') : page.index("</div>", page.index('id="error-summary"'))]
    assert "<title>Error: " in page and 'role="alert"' in summary and "autofocus" in summary
    assert (
        "Your choice was not made: we could not tell which version of the quote you confirmed. "
        "Please choose again." in summary
    )
    assert f"/quotes/{quote.id}/choose" in page  # its "Go ahead with this clinic" is still there
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "quoted"
    assert db.session.get(Quote, quote.id).status == "live"
    assert events(lead, "quote_chosen") == [] and emails("provider_quote_chosen") == []


def test_a_quote_revised_after_the_confirmation_step_is_not_chosen_and_the_patient_sees_the_new_one(
    client, accepted
):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    choose = f"{patient(lead)}/quotes/{quote.id}/choose"
    seen = _revision_shown(client.get(choose))
    assert seen == 1
    # While the patient reads the confirmation step, the clinic raises its price.
    client.post(provider(first) + "/quote", data=quote_form(price_from="40000", price_to="50000"))

    refused = client.post(choose, data={"revision": seen}, follow_redirects=True)
    page = refused.get_data(as_text=True)
    assert refused.request.path == patient(lead)
    assert (
        f"{isolate(first.provider.name)} changed its quote after you opened it, so your choice was not made."
        in page
    )
    assert "€40,000 to €50,000" in page and "Revision 2" in page
    # A confirmation that names no revision chooses none.
    assert client.post(choose, data={}).status_code == 400
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "quoted"
    assert db.session.get(Quote, quote.id).status == "live"
    assert events(lead, "quote_chosen") == [] and emails("provider_quote_chosen") == []

    # Confirming the revision now shown goes ahead with it.
    seen = _revision_shown(client.get(choose))
    assert seen == 2
    done = client.post(choose, data={"revision": seen}, follow_redirects=True)
    assert f"We have told {isolate(first.provider.name)}" in done.get_data(as_text=True)
    [chosen] = events(lead, "quote_chosen")
    assert "(revision 2)" in chosen.note


def test_after_each_quote_step_the_patient_lands_on_its_result_at_the_top_of_the_page(client, accepted):
    """An anchor to the quotes would skip the message above them: screen reader users would miss it."""
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form())
    kept, withdrawn = (
        db.session.scalar(sa.select(Quote).filter_by(assignment_id=a.id)) for a in (first, second)
    )
    client.post(provider(second) + "/quote/withdraw")
    steps = [
        client.get(f"{patient(lead)}/quotes/{withdrawn.id}/choose"),
        client.post(f"{patient(lead)}/quotes/{kept.id}/renew"),
        client.post(f"{patient(lead)}/quotes/{kept.id}/choose", data=choice(kept)),
    ]
    for response in steps:
        # The lead's own page, no anchor (its link is signed anew each second: compare what it names).
        prefix, token = response.headers["Location"].rsplit("/", 1)
        assert response.status_code == 303 and prefix == "/my-request" and "#" not in token
        assert tokens.read_patient_token(token, max_age_seconds=60) == lead.id
    page = client.get(patient(lead)).get_data(as_text=True)
    assert page.index(f"We have told {isolate(first.provider.name)}") < page.index('id="quotes"')


def test_a_paused_clinics_quote_is_not_offered_and_cannot_be_chosen(client, accepted):
    """Paused until reactivated, a clinic's links are closed: chosen, it could not confirm."""
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form())
    paused, other = (db.session.scalar(sa.select(Quote).filter_by(assignment_id=a.id)) for a in accepted[1:])
    db.session.get(Provider, first.provider_id).active = False
    db.session.commit()
    page = client.get(patient(lead)).get_data(as_text=True)
    assert "This clinic is not taking new patients just now" in page
    assert f"/quotes/{paused.id}/choose" not in page and f"/quotes/{other.id}/choose" in page
    refused = client.post(
        f"{patient(lead)}/quotes/{paused.id}/choose", data=choice(paused), follow_redirects=True
    )
    assert "This clinic is not taking new patients just now" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "quoted"
    assert {q.status for q in db.session.scalars(sa.select(Quote))} == {"live"}
    assert events(lead, "quote_chosen") == []


def test_none_of_these_suit_me_closes_the_quotes_and_asks_coordinators_for_other_clinics(client, accepted):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/none")
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert lead.status == "unroutable" and "none of the quotes" in describe_reason(lead.status_reason)
    assert db.session.scalar(sa.select(Quote)).status == "not_chosen"
    assert {db.session.get(Assignment, a.id).status for a in (first, second)} == {"not_chosen"}
    assert len(events(lead, "reroute_requested")) == 1
    assert any("none of the quotes" in e.body_text for e in emails("coordinator_patient_request"))
    assert len(emails("notice_provider_not_chosen")) == len(first.provider.notification_emails) + len(
        second.provider.notification_emails
    )


def test_after_none_suit_the_patients_page_does_not_say_no_clinic_could_take_the_request(client, accepted):
    """A clinic did take it and quote: the page says the patient turned the quotes down, and that a
    coordinator looks for other clinics, where it said no clinic could take the request."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/none")
    page = " ".join(client.get(patient(lead)).get_data(as_text=True).split())
    assert "No clinic we work with could take your request" not in page
    assert "You told us none of the quotes suit you." in page
    # A request no clinic fitted still reads as before.
    other = LeadFactory(status="unroutable")
    db.session.commit()
    page = " ".join(client.get(patient(other)).get_data(as_text=True).split())
    assert "No clinic we work with could take your request straight away." in page


def test_when_a_coordinators_re_route_finds_no_clinic_left_the_patient_still_reads_what_they_told_us(
    client, accepted
):
    """The re-route replaces the status reason with its own (why nobody is left, for coordinators):
    the patient's page still says they turned the quotes down, never that no clinic could take it."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/none")
    db.session.execute(sa.update(Provider).values(active=False))
    coordinator = UserFactory()
    db.session.commit()
    assert reroute_lead(lead.id, actor_type="staff", actor_user_id=coordinator.id, reason="Try others") == []
    db.session.expire_all()
    assert "No provider" in describe_reason(db.session.get(Lead, lead.id).status_reason)
    page = " ".join(client.get(patient(lead)).get_data(as_text=True).split())
    assert "You told us none of the quotes suit you." in page
    assert "No clinic we work with could take your request" not in page


def test_a_request_a_coordinator_holds_back_after_a_clinic_took_it_is_not_called_untakeable(client, accepted):
    """Quoted, then moved to unroutable by hand: clinics did take it, so the patient reads that a
    coordinator is looking for other clinics, and the closed quote below agrees."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    coordinator = UserFactory()
    db.session.commit()
    lead_actions.change_status(lead.id, coordinator.id, "unroutable", note="Checking the clinics' capacity")
    db.session.commit()
    page = " ".join(client.get(patient(lead)).get_data(as_text=True).split())
    assert "No clinic we work with could take your request" not in page
    assert "A coordinator is looking for other clinics for you" in page
    assert "A coordinator is looking at your request personally and will write to you." in page


def test_a_booking_a_coordinator_records_without_the_patients_choice_says_so_on_their_page(client, accepted):
    """Quoted, then booked by hand: no quote was chosen here and the move closed them. The page says
    the booking was not made through it, and no quote line says "before you chose" beside a booking
    "with the clinic"."""
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form(price_from="25000"))
    coordinator = UserFactory()
    db.session.commit()
    lead_actions.change_status(lead.id, coordinator.id, "booked")
    db.session.commit()
    assert {q.status for q in db.session.scalars(sa.select(Quote))} == {"closed"}
    page = " ".join(client.get(patient(lead)).get_data(as_text=True).split())
    assert "A coordinator has recorded your treatment as booked." in page
    assert "It was not booked by choosing a quote on this page, so the quotes below are closed." in page
    for clinic in (first.provider.name, second.provider.name):
        assert f"The quote from <bdi>{clinic}</bdi> is closed." in page
    assert "before you chose" not in page and "booked with the clinic" not in page


def test_a_choice_a_coordinator_marks_booked_by_hand_keeps_the_clinic_the_patient_chose(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    quote = db.session.scalar(sa.select(Quote))
    client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data=choice(quote))
    coordinator = UserFactory()
    db.session.commit()
    lead_actions.change_status(lead.id, coordinator.id, "booked")
    db.session.commit()
    page = " ".join(client.get(patient(lead)).get_data(as_text=True).split())
    assert "Your treatment is booked with the clinic." in page
    assert f"You chose <bdi>{first.provider.name}</bdi> on" in page
    assert "recorded your treatment as booked" not in page


def test_the_chosen_clinic_confirms_the_booking_with_a_date(client, accepted):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    quote = db.session.scalar(sa.select(Quote))
    client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data=choice(quote))
    assert client.post(
        provider(first) + "/booked", data={"treatment_date": "2001-01-01"}, follow_redirects=True
    )
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "chosen"
    day = (utcnow().date() + timedelta(days=60)).isoformat()
    page = client.post(provider(first) + "/booked", data={"treatment_date": day}, follow_redirects=True)
    assert "the booking is confirmed" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "booked"
    assert db.session.scalar(sa.select(Quote)).treatment_date.isoformat() == day
    assert len(events(lead, "treatment_booked")) == 1
    # The clinic's step, told to the coordinators as a booking, not as "Patient request on ...".
    [told] = emails("coordinator_booking")
    assert told.subject == f"Treatment booked on {lead.reference}"
    assert f"{first.provider.name} confirmed the treatment is booked for {day}." in told.body_text


def test_coordinators_see_every_quote_revision_and_the_choice_on_the_lead_page(client, accepted, app):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(first) + "/quote", data=quote_form(price_from="18000"))
    client.post(
        provider(second) + "/quote", data=quote_form(currency="DKK", price_from="150000", price_to="160000")
    )
    chosen = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    client.post(f"{patient(lead)}/quotes/{chosen.id}/choose", data=choice(chosen))
    coordinator, _ = signed_in_client(app)
    page = coordinator.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert f"{first.provider.name}: Chosen" in page and f"{second.provider.name}: Not chosen" in page
    assert "€20,000 to €30,000" in page and "€18,000 to €30,000" in page
    assert "2 (current)" in page and "DKK\xa0150,000 to DKK\xa0160,000" in page
    assert "Chosen by the patient" in page and "The patient chose the quote of" in page


# The clinics a decision ends get nothing more about the request ------------------------------


def _provider_emails(*assignments) -> set[tuple[str, int, str]]:
    """(template, assignment, status) of every provider email, the assignment told by its address."""
    clinic = {address: a.id for a in assignments for address in a.provider.notification_emails}
    rows = db.session.scalars(sa.select(EmailMessage).where(EmailMessage.template.startswith("provider_")))
    return {(email.template, clinic[email.to_address], email.status) for email in rows}


def _a_third_clinic_still_waiting(lead) -> Assignment:
    """A clinic asked after the first two accepted, which has not answered yet."""
    [waiting] = reroute_lead(a_clinic_left_for(lead).id, actor_type="system", reason="One more.", limit=1)
    return waiting


@pytest.mark.parametrize("step", ["choose", "none suit"])
def test_the_patients_decision_cancels_the_unsent_emails_of_every_clinic_it_ends(client, accepted, step):
    """A notification, reminder or quote reminder still queued (retrying after a refusal, say) would
    show a clinic the request after the patient decided; the thank-you notices still go."""
    lead, first, second = accepted
    waiting = _a_third_clinic_still_waiting(lead)
    client.post(provider(first) + "/quote", data=quote_form())
    with time_machine.travel(add_working_days(utcnow(), 2) + timedelta(minutes=1), tick=False):
        swept = escalate_assignments()
    assert (swept.reminded, swept.quotes.clinics_reminded) == (1, 1)  # the waiting clinic; the second
    # The second clinic's notification failed, and a coordinator sent it again.
    [failed] = [
        e for e in emails("provider_notification") if e.to_address in second.provider.notification_emails
    ]
    failed.status = "failed"
    coordinator = UserFactory()
    db.session.commit()
    resend_email(lead.id, failed.id, coordinator.id)
    db.session.commit()

    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    if step == "choose":
        client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data=choice(quote))
    else:
        client.post(f"{patient(lead)}/quotes/none")

    db.session.expire_all()
    kept = "cancelled" if step == "none suit" else "queued"
    expected = {
        ("provider_notification", first.id, kept),
        ("provider_notification", second.id, "failed"),
        ("provider_notification", second.id, "cancelled"),  # the coordinator's resend
        ("provider_quote_reminder", second.id, "cancelled"),
        ("provider_notification", waiting.id, "cancelled"),
        ("provider_reminder", waiting.id, "cancelled"),
    }
    if step == "choose":
        expected.add(("provider_quote_chosen", first.id, "queued"))
    assert _provider_emails(first, second, waiting) == expected
    reminders = emails("provider_reminder") + emails("provider_quote_reminder")
    assert all(e.last_error.startswith("Not sent: the request ended because") for e in reminders)
    thanked = emails("notice_provider_not_chosen")
    assert thanked and {e.status for e in thanked} == {"queued"}


def test_an_email_being_sent_as_the_patient_chooses_is_stopped_right_before_the_server(
    client, accepted, mail_sink, monkeypatch
):
    """Claimed by a worker, the email escapes the cancelling (which takes queued emails only); the
    last check before the server finds that the request ended for its clinic."""
    lead, first, _ = accepted
    waiting = _a_third_clinic_still_waiting(lead)
    client.post(provider(first) + "/quote", data=quote_form())
    quote = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    chosen, revision = quote.id, quote.revision
    notification = next(
        e for e in emails("provider_notification") if e.to_address in waiting.provider.notification_emails
    )
    build_mime = email_module.build_mime

    def choose_meanwhile(email, mail_from):
        message = build_mime(email, mail_from)
        assert email.status == "sending"  # claimed: the choice's cancelling passes it by
        choose_quote(lead.id, chosen, revision)
        return message

    monkeypatch.setattr(email_module, "build_mime", choose_meanwhile)
    assert deliver_email(notification.id) == "cancelled"
    db.session.refresh(notification)
    assert notification.attempts == 0
    # The assignment's status worded as the staff pages word it, in English on the row.
    assert (
        notification.last_error == "Not sent: the request is no longer offered to this clinic (Not chosen)."
    )
    assert notification.last_error_data == {
        "what": "email_not_sent",
        "why": {"what": "no_longer_offered", "status": {"what": "assignment_status", "status": "not_chosen"}},
    }
    assert db.session.get(Assignment, waiting.id).status == "not_chosen"
    assert mail_sink.messages() == []


def test_what_a_quote_includes_is_listed_as_the_readers_language_writes_a_list(client, accepted):
    """ "Behandling og Genoptræning", "العلاج وإعادة التأهيل": not English commas on every page."""
    lead, first, _second = accepted
    quotes.send_quote(first.id, replace(offer(), includes=["treatment", "rehabilitation"]))
    db.session.commit()
    pages = {
        language: client.get(f"{patient(lead)}?language={language}").get_data(as_text=True)
        for language in ("en", "da", "de", "ar")
    }
    assert "<dd>Treatment and rehabilitation</dd>" in pages["en"]
    assert "<dd>Behandling og genoptræning</dd>" in pages["da"]
    assert "<dd>Behandlung und Rehabilitation</dd>" in pages["de"]
    assert "<dd>العلاج وإعادة التأهيل</dd>" in pages["ar"]
    assert "Assessment, hospital stay, follow-up, and travel and accommodation help" in pages["en"]


def test_a_list_of_what_a_quote_includes_starts_with_a_capital_and_goes_on_in_lower_case(
    client, accepted, app
):
    """ "Treatment, assessment and follow-up": only the list's first word is capitalised, on the
    patient's, the clinic's and the coordinators' pages; each box of the clinic's form keeps its capital."""
    lead, first, _second = accepted
    quotes.send_quote(first.id, replace(offer(), includes=["treatment", "assessment", "follow_up"]))
    db.session.commit()
    patients = client.get(patient(lead)).get_data(as_text=True)
    assert "<dd>Treatment, assessment, and follow-up</dd>" in patients
    assert "<dd>Hospital stay, rehabilitation, and travel and accommodation help</dd>" in patients
    clinics = client.get(provider(first)).get_data(as_text=True)
    assert "<dd>Treatment, assessment, and follow-up</dd>" in clinics
    assert re.search(r"<label[^>]*>Hospital stay</label>", clinics)
    staff, _ = signed_in_client(app)
    lead_page = staff.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "<td>Treatment, assessment, and follow-up</td>" in lead_page


def test_the_way_to_be_contacted_is_capitalised_alone_and_in_lower_case_inside_a_sentence(client, accepted):
    """The patient asked for a phone call: "Phone call" as an answer of its own, "(phone preferred)"
    and "contacted this way: phone." inside a sentence, never "(Phone call preferred)"."""
    lead, first, _second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    chosen = db.session.scalar(sa.select(Quote).filter_by(assignment_id=first.id))
    confirm = client.get(f"{patient(lead)}/quotes/{chosen.id}/choose").get_data(as_text=True)
    assert "how you would like to be contacted: phone." in " ".join(confirm.split())
    client.post(f"{patient(lead)}/quotes/{chosen.id}/choose", data=choice(chosen))
    clinics = client.get(provider(first)).get_data(as_text=True)
    assert "Please contact them (phone preferred)." in clinics
    assert "<dd>Phone call</dd>" in clinics
    [to_chosen] = emails("provider_quote_chosen")
    for body in (to_chosen.body_text, to_chosen.body_html):
        assert "They would like to be contacted this way: phone." in body

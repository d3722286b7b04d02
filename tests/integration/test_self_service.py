"""The patient's signed link: their status in plain words, withdrawing consent, asking for erasure."""

import html
import re

import pytest
import sqlalchemy as sa
import time_machine

from leads.dev import seed
from leads.extensions import db
from leads.messaging import tokens
from leads.messaging.email import deliver_email
from leads.messaging.urls import patient_link
from leads.models import Assignment, Consent, EmailMessage, Lead, LeadEvent
from leads.routing.service import route_lead
from leads.timeutil import utcnow
from tests.factories import LeadFactory
from tests.quote_support import answers, client_with_own_address

# Withdrawal locks the lead row (FOR UPDATE on PostgreSQL).
pytestmark = pytest.mark.pg


@pytest.fixture
def routed_lead(app, taxonomy):
    seed.load_demo_providers()
    lead = LeadFactory()
    db.session.add(
        Consent(
            lead=lead, text_version="test-v1", share_with_providers=True, contact=True, source_form="quote"
        )
    )
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    return lead


def _path(lead):
    return "/my-request/" + patient_link(lead.id).rsplit("/my-request/", 1)[1]


def test_the_patient_sees_their_status_in_plain_words(client, routed_lead):
    page = client.get(_path(routed_lead))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Clinics are looking at your request" in body
    assert routed_lead.reference in body


def test_withdrawing_needs_a_tick_and_says_so(client, routed_lead):
    response = client.post(_path(routed_lead) + "/withdraw", data={})
    assert response.status_code == 400
    assert "Tick the box to confirm that you want to withdraw" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lead, routed_lead.id).status == "routed"


@pytest.mark.parametrize(
    ("step", "field", "message"),
    [
        ("withdraw", "confirm_withdraw", "Tick the box to confirm that you want to withdraw"),
        ("erase", "confirm_erasure", "Tick the box to confirm that you want your data erased"),
    ],
)
def test_a_step_without_its_tick_leads_with_an_error_summary_and_says_error_in_the_title(
    client, routed_lead, step, field, message
):
    response = client.post(_path(routed_lead) + "/" + step, data={})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<title>Error: Your request" in page
    summary = page[page.index('id="error-summary"') : page.index("</div>", page.index('id="error-summary"'))]
    assert 'role="alert"' in page and "autofocus" in summary
    assert f'<a href="#{field}">{message}</a>' in summary
    # The summary comes first; the message beside the tick box still names it as an error.
    assert page.index('id="error-summary"') < page.index('id="status-title"')
    assert (
        f'<p class="field-error" id="{field}-error"><span class="visually-hidden">Error:</span> {message}</p>'
        in page
    )
    assert "<title>Error:" not in client.get(_path(routed_lead)).get_data(as_text=True)


def test_withdrawal_stops_a_pending_provider_email_and_closes_open_assignments(
    client, routed_lead, mail_sink
):
    pending = db.session.scalars(
        sa.select(EmailMessage).where(EmailMessage.template.like("provider\\_%", escape="\\"))
    ).all()
    assert pending and all(e.status == "queued" for e in pending)

    response = client.post(_path(routed_lead) + "/withdraw", data={"confirm_withdraw": "y"})
    assert response.status_code == 303

    for email in pending:
        assert deliver_email(email.id) == "skipped"
    db.session.expire_all()
    assert {db.session.get(EmailMessage, e.id).status for e in pending} == {"cancelled"}
    assert not [p for p in mail_sink.messages() if "provider" in p.read_text().lower()]
    lead = db.session.get(Lead, routed_lead.id)
    assert lead.status == "withdrawn"
    assert lead.consent.withdrawn_at is not None
    assert {a.status for a in db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id))} == {
        "withdrawn"
    }
    told = db.session.scalar(sa.select(EmailMessage).filter_by(template="coordinator_patient_request"))
    assert told is not None and "withdrew consent" in told.body_text
    assert "No clinic had received the request yet." in told.body_text
    page = client.get(_path(routed_lead)).get_data(as_text=True)
    assert "You have withdrawn your request" in page


def test_after_a_withdrawal_the_coordinators_read_that_the_clinics_were_already_told(
    client, routed_lead, mail_sink
):
    """The system emails each clinic that received the request: the coordinators' email says so,
    where it asked them to tell the clinics themselves."""
    for email in db.session.scalars(sa.select(EmailMessage).filter_by(lead_id=routed_lead.id)).all():
        deliver_email(email.id)
    client.post(_path(routed_lead) + "/withdraw", data={"confirm_withdraw": "y"})
    assert db.session.scalars(sa.select(EmailMessage).filter_by(template="notice_provider_withdrawn")).all()
    told = db.session.scalar(sa.select(EmailMessage).filter_by(template="coordinator_patient_request"))
    assert "Each clinic that received the request was emailed not to contact them." in told.body_text
    assert "Tell any clinic" not in told.body_text


def test_after_the_erasure_the_patients_link_says_their_details_were_erased_not_that_it_was_mistyped(
    client, routed_lead
):
    from leads.patients import privacy

    privacy.erase_patient(routed_lead.reference, user_id=None, door=privacy.COMMAND_LINE)
    page = client.get(_path(routed_lead) + "?lang=en")
    assert page.status_code == 410
    text = page.get_data(as_text=True)
    assert "copied incompletely" not in text
    assert "The personal details of this request have been erased." in text
    assert client.post(_path(routed_lead) + "/erase", data={"confirm_erasure": "y"}).status_code == 410


def test_withdrawing_twice_changes_nothing_more(client, routed_lead):
    client.post(_path(routed_lead) + "/withdraw", data={"confirm_withdraw": "y"})
    client.post(_path(routed_lead) + "/withdraw", data={"confirm_withdraw": "y"})
    assert len(db.session.scalars(sa.select(LeadEvent).filter_by(kind="consent_withdrawn")).all()) == 1


def test_asking_for_erasure_is_recorded_for_the_coordinators_once(client, routed_lead):
    assert client.post(_path(routed_lead) + "/erase", data={}).status_code == 400
    assert client.post(_path(routed_lead) + "/erase", data={"confirm_erasure": "y"}).status_code == 303
    assert client.post(_path(routed_lead) + "/erase", data={"confirm_erasure": "y"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Lead, routed_lead.id).erasure_requested_at is not None
    assert len(db.session.scalars(sa.select(LeadEvent).filter_by(kind="erasure_requested")).all()) == 1
    assert "You asked us to erase your data" in client.get(_path(routed_lead)).get_data(as_text=True)


def test_the_patient_is_told_the_erasure_is_carried_out_within_a_month_not_by_whom(client, routed_lead):
    """An admin may carry it out, or retention's run when it falls due: the page promises neither."""
    before = client.get(_path(routed_lead)).get_data(as_text=True)
    asked = client.post(_path(routed_lead) + "/erase", data={"confirm_erasure": "y"}, follow_redirects=True)
    after = asked.get_data(as_text=True)
    for page in (before, after):
        assert "We carry it out within one month." in page and "A coordinator" not in page
    assert "We have your request to erase your data." in after


def test_a_bad_or_expired_patient_link_shows_a_clear_page_without_data(client, routed_lead):
    assert client.get(f"/my-request/{tokens.make_assignment_token(routed_lead.id)}").status_code == 404
    path = _path(routed_lead)
    with time_machine.travel(utcnow().timestamp() + 400 * 86400, tick=False):
        page = client.get(path)
    assert page.status_code == 410
    assert routed_lead.reference not in page.get_data(as_text=True)


def _menu_links(response) -> dict[str, str]:
    """The language menu's links, by language code."""
    page = response.get_data(as_text=True)
    menu = re.search(r'<nav class="language-menu".*?</nav>', page, re.S).group(0)
    return {code: html.unescape(href) for href, code in re.findall(r'<a href="([^"]+)" lang="([^"]+)"', menu)}


@pytest.mark.parametrize("action", ["withdraw", "erase"])
def test_the_language_menu_after_a_refused_form_opens_the_patients_page(client, routed_lead, action):
    path = _path(routed_lead)
    refused = client.post(f"{path}/{action}", data={})
    assert refused.status_code == 400
    links = _menu_links(refused)
    assert links["de"] == f"{path}?language=de" and len(links) == 6
    german = client.get(links["de"])
    assert german.status_code == 200
    assert '<html lang="de" dir="ltr">' in german.get_data(as_text=True)


def _repeat_of(app, earlier: Lead, **changes) -> Lead:
    """The request the form stores when sent with `changes`, linked to `earlier` as a repeat."""
    db.session.commit()
    client_with_own_address(app).post("/quote", data=answers(app, preferred_language="en", **changes))
    lead = db.session.scalar(sa.select(Lead).where(Lead.id != earlier.id))
    assert (lead.status, lead.duplicate_of_id) == ("duplicate", earlier.id)
    return lead


def test_a_repeat_from_the_same_address_says_we_already_have_the_request(client, app, taxonomy):
    earlier = LeadFactory(email="Freja@example.org", phone="+4599999999")
    lead = _repeat_of(app, earlier, email="freja@example.org")
    body = client.get(_path(lead)).get_data(as_text=True)
    assert "We already have this request" in body and "repeats one you sent earlier" in body


def test_a_repeat_linked_by_phone_alone_does_not_tell_its_sender_that_the_number_asked_before(
    client, app, taxonomy
):
    """Anyone can send the form with another person's phone number: the page of their request
    must not tell them that the number's owner asked us for a treatment."""
    earlier = LeadFactory(email="owner@example.org", phone="+4520123456")
    lead = _repeat_of(app, earlier, email="stranger@example.org", phone="20 12 34 56")
    body = client.get(_path(lead)).get_data(as_text=True)
    assert "We already have this request" not in body and "repeats one you sent earlier" not in body
    assert "A coordinator is checking your request" in body

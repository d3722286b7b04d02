"""The quote form over HTTP (Flask test client, real database): what the patient sees, what is
stored, and what is refused."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

import config
from leads import consent, create_app
from leads.extensions import db
from leads.intake import service as intake_service
from leads.messaging import outbox
from leads.models import Consent, EmailMessage, Lead, LeadEvent, OutboxMessage, Treatment
from leads.notes import describe_reason
from leads.workflow import LeadStatus
from tests.factories import LeadFactory
from tests.quote_support import (
    NOTHING_STORED,
    VALID_ANSWERS,
    aged_token,
    answers,
    client_with_own_address,
    stored_counts,
)

CONTRACT_FIELDS = (
    "full_name",
    "email",
    "phone",
    "country",
    "preferred_language",
    "treatment",
    "condition",
    "details",
    "timeframe",
    "budget",
    "contact_preference",
    "consent_share",
    "consent_contact",
)


@pytest.fixture
def client(app, taxonomy):
    return client_with_own_address(app)


def _text(response) -> str:
    return response.get_data(as_text=True)


def _words(response) -> str:
    """The page's text with runs of whitespace as single spaces, entities decoded."""
    return " ".join(html.unescape(_text(response)).split())


def _value(page: str, name: str) -> str | None:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', page
    )
    return html.unescape(match.group(1)) if match else None


def _selected(page: str, name: str) -> str | None:
    select = re.search(rf'<select id="{name}" name="{name}".*?</select>', page, re.DOTALL).group(0)
    match = re.search(r'<option value="([^"]*)" selected', select)
    return match.group(1) if match else None


def _only_lead() -> Lead:
    leads = db.session.scalars(sa.select(Lead)).all()
    assert len(leads) == 1, leads
    return leads[0]


def _tasks() -> list[tuple[str, dict]]:
    return [
        (m.task_name, m.payload)
        for m in db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id))
    ]


# --- showing the form ------------------------------------------------------------------------


def test_the_form_has_every_contract_field_and_the_consent_boxes_are_unticked(client):
    response = client.get("/quote")
    page = _text(response)
    assert response.status_code == 200
    assert '<html lang="en" dir="ltr">' in page
    for name in CONTRACT_FIELDS:
        assert f'name="{name}"' in page, name
        assert re.search(rf'<label for="{name}(-0)?"', page) or f'id="{name}-0"' in page, name
    for box in ("consent_share", "consent_contact"):
        tag = re.search(rf'<input type="checkbox" id="{box}"[^>]*>', page).group(0)
        assert "checked" not in tag
    assert page.count("(required)") >= 12 and "(optional)" in page
    assert consent.current().share in page and consent.current().version in page
    assert "<script>" not in page and "https://" not in page  # nothing inline, nothing from a CDN


def test_the_form_is_honest_about_evidence_and_medical_advice(client):
    page = _text(client.get("/quote"))
    assert "investigational" in page and "Danish Medicines Agency" in page
    assert "A quote is not medical advice" in page
    assert "Stem cell therapy for ALS (investigational)" in page
    assert "Stem cell therapy for spinal cord injury (clinical trials)" in page
    assert "Intensive neurorehabilitation after spinal cord injury (approved)" in page
    assert "Offered within clinical trials" in page


def test_the_forms_introduction_says_requests_go_to_the_clinics_and_a_coordinator_reads_only_some_first(
    client,
):
    """Routing is automatic; a coordinator approves only a treatment marked for review first
    (every investigational one by default), so "a coordinator reads every request" was not true."""
    intro = " ".join(
        re.search(r'<p class="intro">(.*?)</p>', client.get("/quote").get_data(as_text=True), re.S)[1].split()
    )
    assert intro == (
        "Tell us which treatment you are looking for. We send your request straight to the Danish clinics "
        "that match it best. For some treatments that are not approved, a coordinator reads it first. "
        "It is free, and you are not committing to anything."
    )


def test_only_active_treatments_and_conditions_are_offered(client):
    db.session.execute(sa.update(Treatment).where(Treatment.slug == "stem-cell-als").values(active=False))
    db.session.commit()
    page = _text(client.get("/quote"))
    assert 'value="stem-cell-als"' not in page
    assert 'value="als"' not in page  # its only treatment is gone
    assert 'value="stem-cell-spinal-cord-injury"' in page


def test_the_root_address_leads_to_the_form_keeping_the_prefill_parameters(client):
    response = client.get("/?treatment=stem-cell-als&utm_source=magazine&other=dropped")
    assert response.status_code == 302
    assert response.headers["Location"] == "/quote?treatment=stem-cell-als&utm_source=magazine"


def test_a_magazine_link_prefills_the_treatment_and_the_source_is_stored(client, app):
    link = (
        "/quote?treatment=stem-cell-spinal-cord-injury&condition=spinal-cord-injury-complete"
        "&utm_source=magazine&utm_medium=print&utm_campaign=spring-issue"
    )
    page = _text(client.get(link, headers={"Referer": "https://magazine.example/stem-cells"}))
    assert _selected(page, "treatment") == "stem-cell-spinal-cord-injury"
    assert _selected(page, "condition") == "spinal-cord-injury-complete"
    hidden = {name: _value(page, name) for name in ("utm_source", "utm_medium", "utm_campaign", "referrer")}
    assert hidden == {
        "utm_source": "magazine",
        "utm_medium": "print",
        "utm_campaign": "spring-issue",
        "referrer": "https://magazine.example/stem-cells",
    }

    response = client.post(
        "/quote",
        data=answers(
            app, treatment="stem-cell-spinal-cord-injury", condition="spinal-cord-injury-complete", **hidden
        ),
    )
    assert response.status_code == 303
    lead = _only_lead()
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == ("magazine", "print", "spring-issue")
    assert lead.referrer == "https://magazine.example/stem-cells"
    assert lead.treatment.slug == "stem-cell-spinal-cord-injury"


def test_unknown_or_mismatched_prefill_values_are_ignored(client):
    page = _text(client.get("/quote?treatment=no-such&condition=knee-osteoarthritis"))
    assert _selected(page, "treatment") is None
    assert _selected(page, "condition") == "knee-osteoarthritis"
    page = _text(client.get("/quote?treatment=stem-cell-als&condition=knee-osteoarthritis"))
    assert _selected(page, "treatment") == "stem-cell-als" and _selected(page, "condition") is None


def test_the_browser_language_preselects_the_preferred_language(client):
    page = _text(client.get("/quote", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}))
    assert _selected(page, "preferred_language") == "de"


def test_a_link_from_this_site_is_not_stored_as_referrer(client):
    page = _text(client.get("/quote", headers={"Referer": "http://localhost/quote"}))
    assert _value(page, "referrer") == ""


# --- a valid request -------------------------------------------------------------------------


@pytest.mark.pg
def test_a_valid_request_stores_lead_consent_event_routing_task_and_email_together(client, app):
    moment = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        response = client.post("/quote", data=answers(app))
    assert response.status_code == 303
    assert response.headers["Location"] == "/quote/thanks"

    lead = _only_lead()
    assert lead.status == LeadStatus.NEW
    assert (lead.full_name, lead.email, lead.phone, lead.country) == (
        "Freja Ørsted",
        "freja@example.org",
        "+4520123456",
        "DK",
    )
    assert (lead.preferred_language, lead.timeframe, lead.budget, lead.contact_preference) == (
        "da",
        "3-6-months",
        "20000-50000-eur",
        "email",
    )
    assert lead.condition.slug == "spinal-cord-injury-incomplete"
    assert lead.created_at == moment
    assert lead.sla_due_at == moment + timedelta(hours=24)
    assert re.fullmatch(r"Q-[23456789A-HJKMNP-Z]{6}", lead.reference)

    record = db.session.scalar(sa.select(Consent))
    assert record.lead_id == lead.id
    assert record.text_version == consent.CURRENT_VERSION
    assert record.share_with_providers and record.contact
    assert record.source_form == consent.SOURCE_QUOTE_FORM and record.given_at == moment

    events = db.session.scalars(sa.select(LeadEvent)).all()
    assert [(e.lead_id, e.kind, e.actor_type, e.to_status) for e in events] == [
        (lead.id, "submitted", "patient", "new")
    ]

    email = db.session.scalar(sa.select(EmailMessage))
    assert (email.to_address, email.lead_id, email.template) == (lead.email, lead.id, "patient_confirmation")
    assert email.reply_to == app.config["COORDINATOR_EMAIL"]
    # One broker message: the routing task carries the confirmation to the email queue.
    assert _tasks() == [(outbox.ROUTE_LEAD, {"lead_id": lead.id, "email_ids": [email.id]})]


def test_the_sla_clock_follows_the_setting(client, app):
    app.config["LEAD_SLA_HOURS"] = 4
    client.post("/quote", data=answers(app))
    lead = _only_lead()
    assert lead.sla_due_at - lead.created_at == timedelta(hours=4)


def test_the_thank_you_page_shows_the_reference_and_next_steps_but_no_personal_data(client, app):
    response = client.post("/quote", data=answers(app), follow_redirects=True)
    page = _text(response)
    lead = _only_lead()
    assert response.status_code == 200 and response.request.path == "/quote/thanks"
    assert lead.reference in page
    assert "What happens next" in page and "within 24 hours" in page
    assert "We have sent a confirmation" in page
    assert app.config["COORDINATOR_EMAIL"] in page  # how to withdraw consent
    # The random reference may itself contain "C6": look for personal data in the rest of the page.
    rest = page.replace(lead.reference, "")
    for personal in ("Freja", "freja@example.org", "20 12 34 56", "+4520123456", "C6"):
        assert personal not in rest
    assert response.headers["Cache-Control"] == "no-store"


def test_an_investigational_treatment_says_a_coordinator_reads_it_first(client, app):
    data = answers(app, treatment="stem-cell-als", condition="als")
    page = _words(client.post("/quote", data=data, follow_redirects=True))
    assert "a coordinator reads your request first" in page
    [(task, payload)] = _tasks()
    assert task == outbox.ROUTE_LEAD and payload["lead_id"] == _only_lead().id  # routing decides on review


def test_the_thank_you_page_without_a_recent_request_says_so(client):
    page = _text(client.get("/quote/thanks"))
    assert "We could not find a recent request" in page and 'href="/quote"' in page


@pytest.mark.pg
def test_sending_the_same_form_twice_stores_one_lead_and_one_email(client, app):
    data = answers(app)
    first = client.post("/quote", data=data)
    with client.session_transaction() as session:
        reference = session["quote_thanks"]["reference"]
    second = client.post("/quote", data=data)
    assert first.status_code == second.status_code == 303
    with client.session_transaction() as session:
        assert session["quote_thanks"]["reference"] == reference
    assert stored_counts() == {"Lead": 1, "Consent": 1, "LeadEvent": 1, "OutboxMessage": 1, "EmailMessage": 1}


@pytest.mark.pg
def test_a_reference_already_in_use_is_replaced_and_the_request_stored_once(client, app, monkeypatch):
    taken = _earlier_lead(400, email="someone.else@example.org", phone="+4599999999").reference
    references = iter([taken, "Q-FRESH2"])
    monkeypatch.setattr(intake_service, "new_reference", lambda: next(references))
    assert client.post("/quote", data=answers(app)).status_code == 303
    with client.session_transaction() as session:
        assert session["quote_thanks"]["reference"] == "Q-FRESH2"
    lead = db.session.scalar(sa.select(Lead).where(Lead.reference == "Q-FRESH2"))
    assert lead.status == LeadStatus.NEW and lead.consent is not None
    # Nothing of the refused first write is left: one lead more, with its entry, task and email.
    assert stored_counts() == {"Lead": 2, "Consent": 1, "LeadEvent": 1, "OutboxMessage": 1, "EmailMessage": 1}


def _sent_then_its_treatment_withdrawn(client, app) -> dict:
    """A form sent and stored, whose treatment is then withdrawn; the form's answers."""
    data = answers(app)
    assert client.post("/quote", data=data).status_code == 303
    db.session.execute(
        sa.update(Treatment).filter_by(slug="neurorehabilitation-spinal-cord-injury").values(active=False)
    )
    db.session.commit()
    app.config["TAXONOMY_CACHE_SECONDS"] = 3600  # the form still offers it
    return data


@pytest.mark.pg
def test_a_form_sent_again_after_its_treatment_was_withdrawn_gets_what_it_stored(client, app):
    data = _sent_then_its_treatment_withdrawn(client, app)
    assert client.post("/quote", data=data).status_code == 303
    assert stored_counts() == {"Lead": 1, "Consent": 1, "LeadEvent": 1, "OutboxMessage": 1, "EmailMessage": 1}


def test_html_in_the_details_is_stored_as_written_and_never_rendered(client, app):
    details = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    client.post("/quote", data=answers(app, details=details))
    lead = _only_lead()
    assert lead.details == details
    email = db.session.scalar(sa.select(EmailMessage))
    assert "script" not in email.body_html and "script" not in email.body_text  # details never go by email

    page = _text(client.post("/quote", data=answers(app, details=details, email="")))
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


# --- refused requests: nothing stored, answers kept, a reason given -----------------------------


def test_a_patient_without_consent_sees_why_and_nothing_is_saved(client, app):
    response = client.post("/quote", data=answers(app, consent_share=None, consent_contact=None))
    page = _text(response)
    assert response.status_code == 422
    assert "<title>Error: " in page
    assert 'id="error-summary"' in page and "autofocus" in page
    assert '<a href="#consent_share">Tick this box to let us share your request' in page
    assert '<a href="#consent_contact">Tick this box to let us and the clinics contact you' in page
    tag = re.search(r'<input type="checkbox" id="consent_share"[^>]*>', page).group(0)
    assert 'aria-describedby="consent_share-error"' in tag and 'aria-invalid="true"' in tag
    assert 'id="consent_share-error"' in page
    assert _value(page, "full_name") == "Freja Ørsted" and _value(page, "email") == "freja@example.org"
    assert stored_counts() == NOTHING_STORED


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("full_name", "", "Enter your full name"),
        ("full_name", "x" * 121, "Your name is too long: use at most 120 characters (it has 121)"),
        (
            "email",
            "freja.example.org",
            "Enter an email address with an @ in it, for example name@example.com",
        ),
        ("phone", "12 34", "That phone number does not look complete. Check it and its country code"),
        ("phone", "call me", "Enter a phone number using digits, with its country code"),
        ("phone", "", "Enter a phone number with its country code, for example +45 12 34 56 78"),
        ("country", "", "Choose the country you live in from the list"),
        ("country", "ZZ", "Choose the country you live in from the list"),
        ("preferred_language", "klingon", "Choose the language you would like us to use from the list"),
        ("treatment", "", "Choose the treatment you would like a quote for from the list"),
        ("treatment", "unicorn-therapy", "Choose the treatment you would like a quote for from the list"),
        ("condition", "", "Choose the condition the treatment is for from the list"),
        ("condition", "knee-osteoarthritis", "is not offered for this condition (Knee osteoarthritis)"),
        ("details", "x" * 4001, "Please shorten this to 4000 characters or fewer (it has 4001)"),
        ("timeframe", "", "Choose when you would like treatment"),
        ("budget", "a million", "Choose a budget, or “I am not sure yet”"),
        ("contact_preference", "pigeon", "Choose how you would like to be contacted"),
    ],
)
def test_each_wrong_answer_gets_its_own_message_and_the_other_answers_are_kept(
    client, app, field, value, message
):
    response = client.post("/quote", data=answers(app, **{field: value}))
    page = html.unescape(_text(response))
    assert response.status_code == 422
    anchor = f"{field}-0" if field in ("timeframe", "budget", "contact_preference") else field
    assert f'<a href="#{anchor}">' in page
    assert message in page
    assert f'id="{field}-error"' in page
    if field != "full_name":
        assert _value(_text(response), "full_name") == "Freja Ørsted"
    if field != "details":
        assert "Injured at C6 two years ago" in page
    assert "Traceback" not in page
    assert stored_counts() == NOTHING_STORED


# Another request on a page brought back by Back after the thank-you page: a carer's for a
# second person, with that person's contact details or their own, or a second one of the patient.
SECOND_REQUEST = {
    "another person": {"full_name": "Ole Ørsted", "email": "ole@example.org", "phone": "+45 30 98 76 54"},
    "another person, the carer's contact details": {"full_name": "Ole Ørsted"},
    "the same person, another condition": {"condition": "spinal-cord-injury-complete"},
}


@pytest.mark.pg
@pytest.mark.parametrize("changes", SECOND_REQUEST.values(), ids=SECOND_REQUEST.keys())
def test_another_request_sent_from_a_page_brought_back_is_refused_not_swallowed(client, app, changes):
    first = answers(app)
    assert client.post("/quote", data=first).status_code == 303
    stored = stored_counts()

    second = {**first, **changes}  # the old page's key, other answers
    response = client.post("/quote", data=second)
    page = _text(response)
    assert response.status_code == 409
    assert "This form page was already used to send a request" in _words(response)
    assert "Your answers are still here" in page
    for name, value in changes.items():
        assert _value(page, name) == value or _selected(page, name) == value
    fresh = _value(page, "form_token")
    assert fresh not in (first["form_token"], "", None)
    assert stored_counts() == stored  # nothing stored, nothing emailed

    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=5)):
        assert client.post("/quote", data={**second, "form_token": fresh}).status_code == 303
    leads = db.session.scalars(sa.select(Lead).order_by(Lead.id)).all()
    assert [lead.full_name for lead in leads] == [first["full_name"], second["full_name"]]
    assert [lead.condition.slug for lead in leads] == [first["condition"], second["condition"]]


@pytest.mark.pg
def test_other_answers_under_the_key_of_a_request_whose_treatment_was_withdrawn_are_refused(client, app):
    data = _sent_then_its_treatment_withdrawn(client, app)
    response = client.post("/quote", data={**data, "full_name": "Ole Ørsted"})
    assert response.status_code == 409
    assert stored_counts() == {"Lead": 1, "Consent": 1, "LeadEvent": 1, "OutboxMessage": 1, "EmailMessage": 1}


def test_the_form_page_is_never_stored_and_its_key_is_not_restored_by_the_browser(client, app):
    shown = client.get("/quote")
    assert shown.headers["Cache-Control"] == "no-store"
    tag = re.search(r'<input[^>]*name="form_token"[^>]*>', _text(shown)).group(0)
    assert 'autocomplete="off"' in tag
    refused = client.post("/quote", data=answers(app, full_name=""))  # the answers come back
    assert refused.status_code == 422 and refused.headers["Cache-Control"] == "no-store"
    assert client.get("/quote/thanks").headers["Cache-Control"] == "no-store"


def test_the_form_and_the_thank_you_page_promise_only_what_the_email_holds(client, app):
    form = _words(client.get("/quote"))
    assert "with a link to your own page where you can follow your request" in form
    thanks = _words(client.post("/quote", data=answers(app), follow_redirects=True))
    assert "with your reference and a link to your own page" in thanks
    assert "the email does not repeat your answers" in thanks
    for page in (form, thanks):
        assert "copy of your request" not in page
    # The email itself: the reference and the link, and no promise that the page repeats the answers.
    from leads.intake.service import confirmation_context
    from leads.messaging.email import render_email

    lead = _only_lead()
    context = confirmation_context(lead_id=lead.id, reference=lead.reference, preferred_language="en")
    email = render_email("patient_confirmation", **context).text
    assert lead.reference in email and context["self_service_url"] in email
    assert "What you sent us" not in email and lead.details not in email


def test_a_cr_lf_in_the_name_is_stored_as_one_line(client, app):
    client.post("/quote", data=answers(app, full_name="Freja\r\nØrsted"))
    assert _only_lead().full_name == "Freja Ørsted"


def test_a_form_sent_too_fast_is_refused_politely_and_can_be_sent_again(client, app):
    data = answers(app, form_token=aged_token(app, age=1))
    response = client.post("/quote", data=data)
    page = _text(response)
    assert response.status_code == 422
    assert "within a few seconds of opening it" in page and "Your answers are still here" in page
    assert _value(page, "email") == "freja@example.org"
    assert _value(page, "form_token") == data["form_token"]  # its clock keeps running
    assert stored_counts() == NOTHING_STORED

    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=5)):
        assert client.post("/quote", data=data).status_code == 303
    assert stored_counts()["Lead"] == 1


def test_the_minimum_fill_time_is_configurable(client, app):
    app.config["QUOTE_MIN_FILL_SECONDS"] = 30
    assert client.post("/quote", data=answers(app)).status_code == 422  # token 10 s old
    app.config["QUOTE_MIN_FILL_SECONDS"] = 5
    assert client.post("/quote", data=answers(app)).status_code == 303


def test_a_form_left_open_too_long_is_refused_and_gets_a_fresh_token(client, app):
    old = aged_token(app, age=25 * 3600)
    response = client.post("/quote", data=answers(app, form_token=old))
    page = _text(response)
    assert response.status_code == 422
    assert "opened a long time ago" in page
    assert _value(page, "form_token") not in (old, "", None)
    assert _value(page, "full_name") == "Freja Ørsted"
    assert stored_counts() == NOTHING_STORED


@pytest.mark.parametrize("token", [None, "", "forged.token", "version-from-the-future"])
def test_a_missing_or_forged_token_is_refused_with_answers_kept(client, app, token):
    if token == "version-from-the-future":
        token = aged_token(app, version="2099-01-v9")
    response = client.post("/quote", data=answers(app, form_token=token))
    assert response.status_code == 422
    assert "We could not check this form" in _text(response)
    assert stored_counts() == NOTHING_STORED


def test_the_consent_wording_the_patient_saw_is_the_version_stored(client, app, monkeypatch):
    older = consent.ConsentText(version="2026-01-v0", share="Share (older wording).", contact="Contact.")
    monkeypatch.setitem(consent.CONSENT_TEXTS, older.key, older)
    client.post("/quote", data=answers(app, form_token=aged_token(app, version=older.version)))
    record = db.session.scalar(sa.select(Consent))
    assert (record.text_version, record.language, record.text_hash) == ("2026-01-v0", "en", older.sha256)


def test_a_treatment_withdrawn_while_the_form_was_open_is_refused(client, app):
    data = answers(app)
    db.session.execute(
        sa.update(Treatment).where(Treatment.slug == VALID_ANSWERS["treatment"]).values(active=False)
    )
    db.session.commit()
    response = client.post("/quote", data=data)
    assert response.status_code == 422
    assert "Choose the treatment you would like a quote for from the list" in _text(response)
    assert stored_counts() == NOTHING_STORED


@pytest.mark.commits  # the CSRF app is a second app with its own connection to the database
def test_with_csrf_on_an_expired_session_keeps_the_answers_and_the_next_send_works(app, taxonomy):
    csrf_app = create_app(config.TestingConfig, WTF_CSRF_ENABLED=True)
    client = client_with_own_address(csrf_app)
    response = client.post("/quote", data=answers(csrf_app))  # no CSRF token: as after a lost session
    page = _text(response)
    assert response.status_code == 400
    assert "Your session had expired" in page and _value(page, "full_name") == "Freja Ørsted"
    csrf_token = _value(page, "csrf_token")
    assert csrf_token
    response = client.post("/quote", data={**answers(csrf_app), "csrf_token": csrf_token})
    assert response.status_code == 303
    assert stored_counts()["Lead"] == 1


# --- spam ------------------------------------------------------------------------------------


def test_a_filled_honeypot_is_stored_as_spam_not_routed_and_not_emailed(client, app):
    response = client.post("/quote", data=answers(app, message_subject="Great offer"), follow_redirects=True)
    page = _text(response)
    lead = _only_lead()
    assert lead.status == LeadStatus.SPAM
    assert describe_reason(lead.status_reason) == (
        "Looks like spam: the hidden field people never see was filled in."
    )
    assert [(e.kind, e.actor_type, e.to_status) for e in lead.events] == [
        ("submitted", "patient", "new"),
        ("status_changed", "system", "spam"),
    ]
    assert _tasks() == [] and stored_counts()["EmailMessage"] == 0
    assert lead.reference in page and "We have sent a confirmation" not in page


def test_many_links_in_the_details_store_the_request_as_spam_for_review(client, app):
    details = "Visit http://a.example http://b.example http://c.example"
    client.post("/quote", data=answers(app, details=details))
    lead = _only_lead()
    assert lead.status == LeadStatus.SPAM
    assert (
        describe_reason(lead.status_reason) == "Looks like spam: the details contain 3 links (more than 2)."
    )
    assert lead.consent is not None and lead.details == details
    assert _tasks() == []


# --- duplicates ------------------------------------------------------------------------------


def _earlier_lead(days_ago: float, **fields) -> Lead:
    lead = LeadFactory(created_at=datetime.now(UTC) - timedelta(days=days_ago), **fields)
    db.session.commit()
    return lead


@pytest.mark.pg
def test_the_same_email_within_the_window_is_linked_as_a_duplicate_and_not_routed(client, app):
    earlier = _earlier_lead(29, email="FREJA@example.org", phone="+4599999999")
    response = client.post("/quote", data=answers(app), follow_redirects=True)
    lead = db.session.scalar(sa.select(Lead).where(Lead.id != earlier.id))
    assert lead.status == LeadStatus.DUPLICATE and lead.duplicate_of_id == earlier.id
    assert earlier.reference in lead.status_reason
    assert [t for t, _ in _tasks()] == [outbox.SEND_EMAILS]  # confirmed, not routed again
    assert response.request.path == "/quote/thanks" and lead.reference in _text(response)


@pytest.mark.pg
@pytest.mark.parametrize(
    "again", ["ØRSTED@example.org", "Ørsted@EXAMPLE.org", "øRSTED@example.org", "ørsted@example.org"]
)
def test_an_address_with_letters_beyond_a_to_z_sent_again_is_the_same_patient(client, app, again):
    """Compared by the keys Python stores (`email_key`): the database's lower() changes A to Z only
    (SQLite's, and PostgreSQL's under the C locale), so øRSTED@ was a new patient beside ØRSTED@."""
    earlier = _earlier_lead(2, email="ØRSTED@example.org", phone="+4599999999")
    client.post("/quote", data=answers(app, email=again))
    lead = db.session.scalar(sa.select(Lead).where(Lead.id != earlier.id))
    assert (lead.status, lead.duplicate_of_id) == (LeadStatus.DUPLICATE, earlier.id)


@pytest.mark.pg
def test_the_same_phone_within_the_window_is_a_duplicate(client, app):
    earlier = _earlier_lead(1, email="someone.else@example.org", phone="+4520123456")
    client.post("/quote", data=answers(app, phone="20 12 34 56"))
    lead = db.session.scalar(sa.select(Lead).where(Lead.id != earlier.id))
    assert (lead.status, lead.duplicate_of_id) == (LeadStatus.DUPLICATE, earlier.id)


@pytest.mark.pg
@pytest.mark.parametrize("same", ["email", "phone"])
def test_a_request_for_another_treatment_is_a_new_request_to_route(client, app, same):
    """A patient asking about another treatment, or a carer asking for someone else from their
    own address, is not parked as a repeat (never routed, not in the coordinators' attention)."""
    other = db.session.scalar(sa.select(Treatment).filter_by(slug="stem-cell-spinal-cord-injury"))
    contact = {"email": "freja@example.org"} if same == "email" else {"phone": "+4520123456"}
    earlier = _earlier_lead(3, treatment=other, **contact)
    client.post("/quote", data=answers(app))
    lead = db.session.scalar(sa.select(Lead).where(Lead.id != earlier.id))
    assert (lead.status, lead.duplicate_of_id) == (LeadStatus.NEW, None)
    assert outbox.ROUTE_LEAD in [task for task, _ in _tasks()]


@pytest.mark.pg
def test_a_request_after_the_window_is_a_new_lead(client, app):
    earlier = _earlier_lead(31, email="freja@example.org")
    client.post("/quote", data=answers(app))
    lead = db.session.scalar(sa.select(Lead).where(Lead.id != earlier.id))
    assert lead.status == LeadStatus.NEW and lead.duplicate_of_id is None


@pytest.mark.pg
def test_the_duplicate_window_is_configurable(client, app):
    app.config["QUOTE_DUPLICATE_WINDOW_DAYS"] = 7
    earlier = _earlier_lead(8, email="freja@example.org")
    client.post("/quote", data=answers(app))
    assert db.session.scalar(sa.select(Lead.status).where(Lead.id != earlier.id)) == LeadStatus.NEW


def _sent_after(client, app, *earlier: Lead) -> Lead:
    """The lead the form stores now, after the `earlier` ones."""
    client.post("/quote", data=answers(app))
    return db.session.scalar(sa.select(Lead).where(Lead.id.not_in([lead.id for lead in earlier])))


@pytest.mark.pg
def test_every_repeat_links_to_the_first_request(client, app):
    first = _earlier_lead(10, email="freja@example.org")
    second = _earlier_lead(5, email="freja@example.org", status="duplicate", duplicate_of=first)
    third = _sent_after(client, app, first, second)
    assert third.duplicate_of_id == first.id


@pytest.mark.pg
@pytest.mark.parametrize("status", ["spam", "withdrawn", "closed_lost"])
def test_an_earlier_spam_withdrawn_or_closed_request_does_not_make_a_duplicate(client, app, status):
    earlier = _earlier_lead(1, email="freja@example.org", status=status)
    client.post("/quote", data=answers(app))
    assert db.session.scalar(sa.select(Lead.status).where(Lead.id != earlier.id)) == LeadStatus.NEW


@pytest.mark.pg
@pytest.mark.parametrize("status", ["withdrawn", "closed_lost"])
def test_a_repeat_of_a_request_that_ended_is_a_new_request(client, app, status):
    """The repeat found is a duplicate; the chain's first request was withdrawn or closed since."""
    first = _earlier_lead(10, email="freja@example.org", status=status)
    second = _earlier_lead(5, email="freja@example.org", status="duplicate", duplicate_of=first)
    third = _sent_after(client, app, first, second)
    assert (third.status, third.duplicate_of_id) == (LeadStatus.NEW, None)


@pytest.mark.pg
def test_the_window_runs_from_the_chains_first_request(client, app):
    """A patient who asks again every few weeks is heard again once the first request is old."""
    first = _earlier_lead(40, email="freja@example.org")
    second = _earlier_lead(20, email="freja@example.org", status="duplicate", duplicate_of=first)
    third = _sent_after(client, app, first, second)
    assert (third.status, third.duplicate_of_id) == (LeadStatus.NEW, None)


# --- settings --------------------------------------------------------------------------------


def test_an_unreadable_rate_limit_setting_stops_the_app_with_its_name(app):
    with pytest.raises(config.ConfigError, match="QUOTE_RATE_LIMIT"):
        create_app(config.TestingConfig, QUOTE_RATE_LIMIT="lots")


def test_each_radio_of_an_unanswered_question_is_marked_invalid(client, app):
    """A screen reader says "invalid" on the radio a patient lands on from the summary's link,
    as it does on every other field with a problem."""
    response = client.post("/quote", data=answers(app, timeframe=None))
    page = _text(response)
    assert response.status_code == 422
    radios = re.findall(r'<input type="radio" id="timeframe-\d+"[^>]*>', page)
    assert radios and all('aria-invalid="true"' in radio for radio in radios)
    answered = re.findall(r'<input type="radio" id="budget-\d+"[^>]*>', page)
    assert answered and not any("aria-invalid" in radio for radio in answered)

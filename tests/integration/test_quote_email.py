"""The patient's confirmation email: what it says, and that a real worker delivers it over SMTP."""

import email
import email.policy
import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from leads import intake
from leads.extensions import db
from leads.messaging import tokens
from leads.messaging.email import render_email
from leads.messaging.urls import patient_link
from leads.models import EmailMessage, Lead
from tests.helpers import wait_until
from tests.quote_support import answers, client_with_own_address, confirmation


@pytest.fixture
def client(app, taxonomy):
    return client_with_own_address(app)


def _confirmation() -> EmailMessage:
    return confirmation()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_confirmation_has_the_reference_and_nothing_the_patient_sent(client, app):
    client.post(
        "/quote",
        data=answers(
            app,
            preferred_language="en",
            treatment="stem-cell-spinal-cord-injury",
            condition="spinal-cord-injury-complete",
        ),
    )
    lead = db.session.scalar(sa.select(Lead))
    message = _confirmation()
    text = _flat(message.body_text)
    assert message.subject == f"Your quote request {lead.reference}"
    assert f"Your reference: {lead.reference}" in text
    for line in (
        "Name: Freja Ørsted",
        "Email: freja@example.org",
        "Phone: +4520123456",
        "Country: Denmark",
        "Preferred language: Danish",
        "Treatment: Stem cell therapy for spinal cord injury",
        "How established it is: Offered within clinical trials",
        "Condition: Spinal cord injury (complete)",
        "When: In 3 to 6 months",
        "Budget: €20,000 to €50,000",
        "How to contact you: Email",
        "Injured at C6 two years ago",
    ):
        assert line not in text, line  # the details are behind the self-service link
    # The signed link is random and may spell anything ("C6"): look at the words around it.
    words, html = (re.sub(r"http\S+", "", body) for body in (text, message.body_html))
    for sent in ("Freja", "freja@example.org", "20123456", "Spinal cord injury (complete)", "Injured", "C6"):
        assert sent not in words and sent not in html, sent
    assert lead.reference in message.body_html


def test_the_confirmation_is_honest_about_evidence_and_medical_advice(client, app):
    client.post(
        "/quote", data=answers(app, preferred_language="en", treatment="stem-cell-als", condition="als")
    )
    text = _flat(_confirmation().body_text)
    assert "stem cell therapy for spinal cord injury is investigational in Denmark" in text
    assert "regulated by the Danish Medicines Agency" in text
    assert "A quote is not medical advice" in text
    assert (
        "within 24 hours" in text and "a coordinator reads your request first, before any clinic sees" in text
    )


def test_the_confirmation_does_not_promise_a_review_that_a_clinical_trial_request_never_gets(client, app):
    """Stem cell therapy for spinal cord injury is not approved, yet offered within trials and routed
    at once: the email must not tell its patient that every unapproved treatment is read first."""
    client.post(
        "/quote", data=answers(app, preferred_language="en", treatment="stem-cell-spinal-cord-injury")
    )
    assert db.session.scalar(sa.select(Lead)).treatment.requires_review is False
    text = _flat(_confirmation().body_text)
    assert "For a treatment that is not approved" not in text
    assert "For some treatments that are not approved, a coordinator reads your request first" in text


def test_the_confirmation_links_to_the_patients_own_page_and_the_link_works(client, app):
    client.post("/quote", data=answers(app, preferred_language="en"))
    message = _confirmation()
    reference = db.session.scalar(sa.select(Lead.reference))
    link = re.search(r"(http\S+/my-request/\S+)", message.body_text).group(1)
    assert link.startswith(app.config["BASE_URL"])
    assert f'href="{link}"' in message.body_html
    assert f"You can also reply to this email, quoting your reference {reference}" in _flat(message.body_text)
    assert message.reply_to == app.config["COORDINATOR_EMAIL"]

    page = client.get(link.removeprefix(app.config["BASE_URL"]))
    assert page.status_code == 200 and reference in page.get_data(as_text=True)


def test_the_link_comes_from_one_place_and_without_it_the_email_says_whom_to_write_to(client, app):
    client.post("/quote", data=answers(app, preferred_language="en"))
    lead = db.session.scalar(sa.select(Lead))
    context = intake.confirmation_context(
        lead_id=lead.id, reference=lead.reference, preferred_language=lead.preferred_language
    )
    assert context["self_service_url"] == patient_link(lead.id, "en")

    rendered = render_email("patient_confirmation", **{**context, "self_service_url": None})
    coordinators = app.config["COORDINATOR_EMAIL"]
    assert (
        f"withdraw your consent at any time: reply to this email, or write to {coordinators}, "
        f"quoting your reference {lead.reference}" in _flat(rendered.text)
    )
    assert "/my-request/" not in rendered.text  # no dead link
    privacy_notice = f"{app.config['BASE_URL']}/privacy"
    assert re.findall(r'href="([^"]+)"', rendered.html) == [f"mailto:{coordinators}", privacy_notice]


def test_the_patient_receives_the_confirmation_through_a_real_worker_and_smtp(
    app, taxonomy, celery_worker, mail_sink
):
    client = client_with_own_address(app)
    assert client.post("/quote", data=answers(app, preferred_language="en")).status_code == 303
    reference = db.session.scalar(sa.select(Lead.reference))
    db.session.rollback()  # never hold the SQLite write lock while the worker needs it

    def confirmation_delivered():
        for path in mail_sink.messages():
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if parsed["To"] == "freja@example.org":
                return parsed
        return None

    delivered = wait_until(confirmation_delivered, timeout=60)
    assert delivered["Subject"] == f"Your quote request {reference}"
    assert delivered["Reply-To"] == app.config["COORDINATOR_EMAIL"]
    body = delivered.get_body(preferencelist=("plain",)).get_content()
    assert f"Your reference: {reference}" in body and "Freja Ørsted" not in body
    assert delivered.get_body(preferencelist=("html",)) is not None
    # Rendered by the worker that sent it, and kept as sent.
    stored = db.session.scalar(sa.select(EmailMessage).filter_by(template="patient_confirmation"))
    assert stored.render_context is None and stored.subject == delivered["Subject"]
    assert f"Your reference: {reference}" in stored.body_text


def test_the_request_only_queues_what_renders_the_confirmation(client, app):
    assert client.post("/quote", data=answers(app, preferred_language="de")).status_code == 303
    lead = db.session.scalar(sa.select(Lead))
    stored = db.session.scalar(sa.select(EmailMessage).filter_by(template="patient_confirmation"))
    assert (stored.subject, stored.body_text, stored.body_html) == ("", "", "")
    pending = stored.render_context
    assert (pending["template"], pending["language"]) == ("patient_confirmation", "de")
    assert pending["context"]["reference"] == lead.reference
    link = urlsplit(pending["context"]["self_service_url"])
    assert link.path.startswith("/my-request/") and link.query == "lang=de"
    assert tokens.read_patient_token(link.path.rsplit("/", 1)[1], max_age_seconds=60) == lead.id

    rendered = confirmation()
    assert rendered.render_context is None
    rendered_and_cleared = sa.select(sa.func.count(EmailMessage.id)).where(
        EmailMessage.id == rendered.id, EmailMessage.render_context.is_(None)
    )
    assert db.session.scalar(rendered_and_cleared) == 1  # SQL NULL, not JSON null
    assert rendered.subject == f"Ihre Angebotsanfrage {lead.reference}"

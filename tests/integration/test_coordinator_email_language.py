"""The coordinators' shared mailbox gets its notifications in the language chosen for it
(`COORDINATOR_EMAIL_LANGUAGE`, English unless set): the same templates through the catalogs,
delivered over real SMTP; the lead's history keeps its notes in English either way."""

from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa

import config
from leads import create_app
from leads.dev import seed
from leads.extensions import db
from leads.messaging import tokens
from leads.messaging.email import deliver_email
from leads.models import Assignment, EmailMessage, LeadEvent
from leads.routing.service import route_lead
from tests.factories import LeadFactory


@pytest.fixture
def routed(app, taxonomy):
    seed.load_demo_providers()
    lead = LeadFactory()
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    first = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).first()
    return lead, first


def _decline(client, assignment):
    link = f"/p/{tokens.make_assignment_token(assignment.id)}"
    response = client.post(
        link + "/decline", data={"reason": "no_capacity", "decline_note": "Fuld til marts"}
    )
    assert response.status_code == 303


def _to_coordinators() -> EmailMessage:
    [email] = db.session.scalars(sa.select(EmailMessage).filter_by(template="coordinator_provider_response"))
    return email


def test_the_coordinators_mailbox_reads_danish_when_chosen(client, routed, app, mail_sink, monkeypatch):
    monkeypatch.setitem(app.config, "COORDINATOR_EMAIL_LANGUAGE", "da")
    lead, first = routed
    _decline(client, first)
    email = _to_coordinators()
    assert email.to_address == app.config["COORDINATOR_EMAIL"]  # the one shared address
    assert email.subject == f"Klinikkens svar på {lead.reference}"
    # No capital after the colon: no full sentence follows.
    assert f"{first.provider.name} afviste: ingen kapacitet lige nu." in email.body_text
    assert "Deres note: Fuld til marts" in email.body_text
    assert "Åbn forespørgslen: " in email.body_text
    assert 'lang="da"' in email.body_html

    assert deliver_email(email.id) == "sent"
    [received] = [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in mail_sink.messages()
        if lead.reference in path.read_text(errors="replace") and "Klinikkens svar" in path.read_text()
    ]
    assert received["Subject"] == f"Klinikkens svar på {lead.reference}"
    # The history is stored data: English whatever the mailbox reads.
    [event] = db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="provider_declined"))
    assert event.note.startswith(f"{first.provider.name} declined: no capacity at the moment.")


def test_the_coordinators_mailbox_reads_english_by_default(client, routed, app):
    assert app.config["COORDINATOR_EMAIL_LANGUAGE"] == "en"
    lead, first = routed
    _decline(client, first)
    email = _to_coordinators()
    assert email.subject == f"Provider answer on {lead.reference}"
    assert f"{first.provider.name} declined: no capacity at the moment." in email.body_text


def test_a_coordinator_email_language_other_than_english_or_danish_stops_the_app():
    with pytest.raises(config.ConfigError, match="COORDINATOR_EMAIL_LANGUAGE"):
        create_app(config.TestingConfig, COORDINATOR_EMAIL_LANGUAGE="fr")

"""The confirmation email goes to an address nobody verified: it carries the reference, what
happens next and the self-service link, never the patient's health data or chosen text."""

import sqlalchemy as sa

from leads.extensions import db
from leads.models import Lead
from tests.quote_support import answers, client_with_own_address, confirmation

CHOSEN_TEXT = "Win a prize today Evilcorp"


def test_the_confirmation_carries_no_condition_no_words_and_no_contact_details(app, taxonomy):
    client = client_with_own_address(app)
    sent = answers(
        app,
        full_name=CHOSEN_TEXT,
        preferred_language="en",
        details="My MS relapsed in March; secret-detail-77.",
        treatment="stem-cell-spinal-cord-injury",
        condition="spinal-cord-injury-complete",
    )
    assert client.post("/quote", data=sent).status_code == 303
    lead = db.session.scalar(sa.select(Lead))
    message = confirmation()
    for body in (message.body_text, message.body_html, message.subject):
        for leaked in (
            "Evilcorp",
            "Win a prize",
            "secret-detail-77",
            "relapsed",
            lead.email,
            lead.phone,
            lead.condition.name,
            lead.treatment.name,
        ):
            assert leaked not in body, leaked
    assert lead.reference in message.subject and lead.reference in message.body_text
    assert "/my-request/" in message.body_text and "What happens next" in message.body_html

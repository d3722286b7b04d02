"""Fixtures shared by integration tests."""

import pytest

from leads.extensions import db
from leads.messaging.tokens import make_assignment_token, make_patient_token
from leads.models import AddressBounce
from leads.models.quote import Quote
from tests.factories import AssignmentFactory, EmailMessageFactory, LeadFactory, UserFactory


@pytest.fixture
def real(app):
    """Records every id in a URL can name, so an answer is about access, not a missing row."""
    assignment = AssignmentFactory()
    db.session.flush()
    email = EmailMessageFactory(lead_id=assignment.lead.id)
    quote = Quote(assignment_id=assignment.id, lead_id=assignment.lead.id)
    db.session.add(quote)
    bounce = AddressBounce(provider_id=assignment.provider_id, address="a@example.dk", answer="550")
    db.session.add(bounce)
    other = UserFactory()
    LeadFactory()
    db.session.commit()
    lead = assignment.lead
    return {
        "lead_id": lead.id,
        "provider_id": assignment.provider_id,
        "treatment_id": lead.treatment_id,
        "condition_id": lead.condition_id,
        "user_id": other.id,
        "email_id": email.id,
        "quote_id": quote.id,
        "bounce_id": bounce.id,
        "name": "20260101-000000-000000.eml",
        "filename": "css/staff.css",
        "token": make_assignment_token(assignment.id),
        "patient_token": make_patient_token(lead.id),
    }

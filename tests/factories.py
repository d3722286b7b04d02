"""factory_boy factories for the models the tests build."""

import factory
import sqlalchemy as sa
from factory.alchemy import SQLAlchemyModelFactory

from leads.auth.accounts import hash_password
from leads.extensions import db
from leads.models import (
    Assignment,
    Condition,
    EmailMessage,
    Lead,
    Provider,
    ProviderTreatment,
    Treatment,
    User,
)


def _current_session():
    return db.session


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _current_session
        sqlalchemy_session_persistence = "flush"


class TreatmentFactory(_Base):
    class Meta:
        model = Treatment

    slug = factory.Sequence(lambda n: f"treatment-{n}")
    name = factory.Sequence(lambda n: f"Treatment {n}")
    evidence_status = "approved"


class ConditionFactory(_Base):
    class Meta:
        model = Condition

    slug = factory.Sequence(lambda n: f"condition-{n}")
    name = factory.Sequence(lambda n: f"Condition {n}")
    category = "Neurological"


def _first(model, slug):
    return db.session.scalar(sa.select(model).filter_by(slug=slug))


class LeadFactory(_Base):
    """A lead for a seeded treatment (the `taxonomy` fixture) or freshly made ones."""

    class Meta:
        model = Lead

    full_name = "Freja Ørsted"
    email = factory.Sequence(lambda n: f"patient{n}@example.org")
    phone = factory.Sequence(lambda n: f"+4520{n:06d}")
    country = "DE"
    preferred_language = "en"
    treatment = factory.LazyFunction(
        lambda: _first(Treatment, "neurorehabilitation-spinal-cord-injury") or TreatmentFactory()
    )
    condition = factory.LazyFunction(
        lambda: _first(Condition, "spinal-cord-injury-incomplete") or ConditionFactory()
    )
    details = "Injured at C6 two years ago."
    timeframe = "3-6-months"
    budget = "20000-50000-eur"
    contact_preference = "email"


class ProviderFactory(_Base):
    class Meta:
        model = Provider

    name = factory.Sequence(lambda n: f"Test Clinic {n}")
    city = "Aarhus"
    region = "Midtjylland"
    notification_emails = factory.Sequence(lambda n: [f"clinic{n}@example.dk"])
    languages = ("da", "en")

    @factory.post_generation
    def offers(self, create, treatments, **kwargs):
        for treatment in treatments or ():
            self.treatments.append(ProviderTreatment(treatment=treatment, evidence_status="approved"))


class UserFactory(_Base):
    """A staff account; the password is "correct horse battery" unless given."""

    class Meta:
        model = User

    class Params:
        password = "correct horse battery"

    email = factory.Sequence(lambda n: f"staff{n}@example.dk")
    role = "coordinator"
    password_hash = factory.LazyAttribute(lambda o: hash_password(o.password))


class AssignmentFactory(_Base):
    class Meta:
        model = Assignment

    lead = factory.SubFactory(LeadFactory)
    provider = factory.SubFactory(ProviderFactory)
    rank = 1
    score = 80.0
    score_breakdown = factory.LazyFunction(
        lambda: {
            "score": 80.0,
            "components": [
                {"name": "evidence", "points": 30.0, "max": 30.0, "detail": "offers it as approved"},
                {"name": "language", "points": 20.0, "max": 20.0, "detail": "speaks en"},
                {"name": "response rate", "points": 30.0, "max": 50.0, "detail": "no history yet"},
            ],
        }
    )


class EmailMessageFactory(_Base):
    class Meta:
        model = EmailMessage

    idempotency_key = factory.Sequence(lambda n: f"test-email:{n}")
    template = "provider_notification"
    to_address = factory.Sequence(lambda n: f"clinic{n}@example.dk")
    subject = "New request"
    body_text = "A new request is waiting.\n"
    body_html = "<p>A new request is waiting.</p>"
    message_id = factory.Sequence(lambda n: f"<test-{n}@example.dk>")

"""factory_boy factories for the models the tests build."""

import factory
import sqlalchemy as sa
from factory.alchemy import SQLAlchemyModelFactory

from leads.extensions import db
from leads.models import Condition, Lead, Provider, ProviderTreatment, Treatment


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

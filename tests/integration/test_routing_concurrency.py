"""Two routings at the same moment: a provider's weekly capacity is never exceeded and no
provider is assigned twice (PostgreSQL row locks; on SQLite, one writer at a time)."""

import threading

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Assignment, Condition, EmailMessage, Lead, ProviderTreatment, Treatment
from leads.routing.service import route_lead
from tests.factories import LeadFactory, ProviderFactory

# Each routing runs in its own thread and connection: the data must really be committed.
pytestmark = [pytest.mark.commits, pytest.mark.pg]


def _slug(model, slug):
    return db.session.scalar(sa.select(model).filter_by(slug=slug))


def _provider(name, capacity):
    provider = ProviderFactory(
        name=name,
        weekly_capacity=capacity,
        conditions=[_slug(Condition, "spinal-cord-injury-incomplete")],
    )
    provider.treatments.append(
        ProviderTreatment(
            treatment=_slug(Treatment, "neurorehabilitation-spinal-cord-injury"), evidence_status="approved"
        )
    )
    return provider


def _route_at_once(app, lead_ids: list[int]) -> list[str]:
    """Route each lead in its own thread (own app context, own session), all released together."""
    db.session.rollback()  # this test's session must not hold the SQLite write lock
    barrier = threading.Barrier(len(lead_ids))
    outcomes: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(index: int, lead_id: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                outcomes[index] = route_lead(lead_id)
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, lead_id)) for i, lead_id in enumerate(lead_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return [outcomes[i] for i in range(len(lead_ids))]


def test_two_leads_routed_at_once_against_a_capacity_of_one_give_it_to_exactly_one(app, taxonomy):
    for round_number in range(5):
        provider = _provider(f"Single Seat Clinic {round_number}", capacity=1)
        first, second = LeadFactory(), LeadFactory()
        db.session.commit()
        provider_id = provider.id
        outcomes = _route_at_once(app, [first.id, second.id])
        assert sorted(outcomes) == ["routed", "unroutable"]
        assert (
            db.session.scalar(sa.select(sa.func.count(Assignment.id)).filter_by(provider_id=provider_id)) == 1
        )
        loser = first if outcomes[0] == "unroutable" else second
        assert '["capacity_used",' in db.session.get(Lead, loser.id).status_reason
        db.session.rollback()


def test_the_same_lead_routed_twice_at_once_is_assigned_once(app, taxonomy):
    for index in range(4):
        _provider(f"Roomy Clinic {index}", capacity=50)
    lead = LeadFactory()
    db.session.commit()
    outcomes = _route_at_once(app, [lead.id, lead.id])
    assert sorted(outcomes) == ["routed", "skipped"]
    assignments = db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id)).all()
    assert len(assignments) == 3 == len({a.provider_id for a in assignments})
    assert db.session.scalar(sa.select(sa.func.count(EmailMessage.id))) == 3


def test_many_leads_routed_in_parallel_never_exceed_any_capacity(app, taxonomy):
    capacities = {"Tight A": 1, "Tight B": 2, "Tight C": 3}
    ids = {name: _provider(name, capacity).id for name, capacity in capacities.items()}
    leads = [LeadFactory() for _ in range(8)]
    db.session.commit()
    outcomes = _route_at_once(app, [lead.id for lead in leads])
    counts = dict(
        db.session.execute(
            sa.select(Assignment.provider_id, sa.func.count(Assignment.id)).group_by(Assignment.provider_id)
        ).all()
    )
    assert {name: counts.get(ids[name], 0) for name in capacities} == capacities
    assert outcomes.count("routed") >= 2 and outcomes.count("skipped") == 0

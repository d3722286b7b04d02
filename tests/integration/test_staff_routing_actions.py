"""The lead page's routing buttons, through the routing service: approve a lead waiting for
review, and re-route a lead to the next providers not yet tried."""

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Assignment, Condition, LeadEvent, ProviderTreatment, Role, Treatment
from tests.factories import AssignmentFactory, LeadFactory, ProviderFactory
from tests.staff_support import signed_in_client

# Approving and re-routing take the routing service's row locks.
pytestmark = pytest.mark.pg

TREATMENT = "neurorehabilitation-spinal-cord-injury"


def _slug(model, slug):
    return db.session.scalar(sa.select(model).filter_by(slug=slug))


def _clinic(name: str):
    provider = ProviderFactory(
        name=name,
        conditions=[_slug(Condition, "spinal-cord-injury-incomplete")],
        languages=["da", "en"],
    )
    provider.treatments.append(
        ProviderTreatment(treatment=_slug(Treatment, TREATMENT), evidence_status="approved")
    )
    return provider


def _assigned(lead) -> list[str]:
    rows = db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank))
    return [a.provider.name for a in rows]


@pytest.fixture
def coordinator(app, taxonomy):
    return signed_in_client(app, Role.COORDINATOR)


def test_approving_a_waiting_lead_sends_it_to_the_matching_providers(app, coordinator):
    client, user = coordinator
    _clinic("Aarhus Rehab (demo)")
    lead = LeadFactory(status="needs_review")
    db.session.commit()
    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "Approve routing" in page
    response = client.post(f"/staff/leads/{lead.id}/approve-routing")
    assert response.status_code == 302
    db.session.expire_all()
    assert lead.status == "routed" and _assigned(lead) == ["Aarhus Rehab (demo)"]
    approval = db.session.scalar(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="routing_approved"))
    assert approval.actor_user_id == user.id
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Routing approved: the lead went to the matching providers." in html
    assert "Aarhus Rehab (demo)" in html


def test_approving_when_no_provider_fits_says_the_lead_is_unroutable(app, coordinator):
    client, _ = coordinator
    lead = LeadFactory(status="needs_review")
    db.session.commit()
    response = client.post(f"/staff/leads/{lead.id}/approve-routing")
    db.session.expire_all()
    assert lead.status == "unroutable"
    assert "no provider fits" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_only_a_lead_waiting_for_review_can_be_approved(app, coordinator):
    client, _ = coordinator
    lead = LeadFactory(status="routed")
    db.session.commit()
    assert "Approve routing" not in client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    response = client.post(f"/staff/leads/{lead.id}/approve-routing")
    assert response.status_code == 409
    assert "Only a lead that needs review can be approved" in response.get_data(as_text=True)


def test_rerouting_offers_the_lead_to_a_provider_not_yet_tried(app, coordinator):
    client, user = coordinator
    first, second = _clinic("Aarhus Rehab (demo)"), _clinic("Odense Rehab (demo)")
    lead = LeadFactory(status="routed")
    AssignmentFactory(lead=lead, provider=first, status="declined")
    db.session.commit()
    assert "Re-route" in client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    response = client.post(f"/staff/leads/{lead.id}/reroute", data={"reroute-reason": "Aarhus declined"})
    assert response.status_code == 302
    db.session.expire_all()
    assert _assigned(lead) == ["Aarhus Rehab (demo)", "Odense Rehab (demo)"]
    event = db.session.scalar(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="rerouted"))
    assert event.actor_user_id == user.id and event.note.startswith("Aarhus declined")
    assert "Offered to more providers: 1." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert second.id in {a.provider_id for a in db.session.scalars(sa.select(Assignment))}


def test_rerouting_needs_a_reason(app, coordinator):
    client, _ = coordinator
    lead = LeadFactory(status="routed")
    db.session.commit()
    response = client.post(f"/staff/leads/{lead.id}/reroute", data={"reroute-reason": ""})
    assert response.status_code == 400
    assert "Say why the lead needs other providers" in response.get_data(as_text=True)


def test_a_lead_the_service_will_not_reroute_gets_its_reason(app, coordinator):
    client, _ = coordinator
    lead = LeadFactory(status="new")
    db.session.commit()
    response = client.post(f"/staff/leads/{lead.id}/reroute", data={"reroute-reason": "try others"})
    assert response.status_code == 409
    assert "cannot be re-routed" in response.get_data(as_text=True)
    assert _assigned(lead) == []


def test_a_lead_whose_treatment_needs_review_is_not_re_routed_without_an_approval(app, coordinator):
    """Moved from needs_review to unroutable by hand, it would reach clinics unapproved."""
    client, _ = coordinator
    _clinic("Aarhus Rehab (demo)")
    _slug(Treatment, TREATMENT).requires_review = True
    lead = LeadFactory(status="unroutable")
    db.session.commit()
    response = client.post(f"/staff/leads/{lead.id}/reroute", data={"reroute-reason": "try them"})
    assert response.status_code == 409
    assert "needs a coordinator&#39;s review before any clinic sees the request" in response.get_data(
        as_text=True
    )
    assert _assigned(lead) == []
    lead.add_event("routing_approved", actor_type="staff")  # approved earlier, then unroutable
    db.session.commit()
    response = client.post(f"/staff/leads/{lead.id}/reroute", data={"reroute-reason": "try them"})
    assert response.status_code == 302 and _assigned(lead) == ["Aarhus Rehab (demo)"]

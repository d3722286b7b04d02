"""The lead page's routing buttons, through the routing service: approve a lead waiting for
review, and re-route a lead to the next providers not yet tried."""

import re

import pytest
import sqlalchemy as sa
from markupsafe import escape

from leads.extensions import db
from leads.models import Assignment, Condition, LeadEvent, ProviderTreatment, Role, Treatment
from leads.patients import privacy
from leads.routing.service import route_lead
from tests.factories import AssignmentFactory, LeadFactory, ProviderFactory
from tests.helpers import read_bracketed
from tests.staff_support import signed_in_client

# Approving and re-routing take the routing service's row locks.
pytestmark = pytest.mark.pg

TREATMENT = "neurorehabilitation-spinal-cord-injury"
WITHDRAWN = "The patient has withdrawn this request, so it is no longer available."  # sharing_refusal's


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


def _shown_offers(html: str) -> str:
    """What the page's re-route form says the page showed (its hidden field)."""
    return re.search(r'name="reroute-shown_offers" type="hidden" value="([^"]*)"', html)[1]


def _reroute(client, lead, reason: str, *, page: str | None = None):
    """Post the re-route form of `page` (by default the lead page as it is now), as a browser does."""
    page = page if page is not None else client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    return client.post(
        f"/staff/leads/{lead.id}/reroute",
        data={"reroute-reason": reason, "reroute-shown_offers": _shown_offers(page)},
    )


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
    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "Re-route" in page
    response = _reroute(client, lead, "Aarhus declined", page=page)
    assert response.status_code == 302
    db.session.expire_all()
    assert _assigned(lead) == ["Aarhus Rehab (demo)", "Odense Rehab (demo)"]
    event = db.session.scalar(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="rerouted"))
    # The typed reason (no full stop) quoted as typed, never run into the system's sentence.
    assert event.actor_user_id == user.id
    assert event.note == "Sent to: Odense Rehab (demo). Reason given: “Aarhus declined”"
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Offered to more providers: 1." in shown
    assert "Sent to: Odense Rehab (demo). Reason given: “Aarhus declined”" in shown
    assert second.id in {a.provider_id for a in db.session.scalars(sa.select(Assignment))}


def test_rerouting_needs_a_reason(app, coordinator):
    client, _ = coordinator
    lead = LeadFactory(status="routed")
    db.session.commit()
    response = _reroute(client, lead, "")
    assert response.status_code == 400
    assert "Say why the lead needs other providers" in response.get_data(as_text=True)


def test_a_lead_the_service_will_not_reroute_gets_its_reason(app, coordinator):
    client, _ = coordinator
    lead = LeadFactory(status="new")
    db.session.commit()
    response = client.post(
        f"/staff/leads/{lead.id}/reroute",
        data={"reroute-reason": "try others", "reroute-shown_offers": "new:0:0:0"},  # a page from before
    )
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
    response = _reroute(client, lead, "try them")
    assert response.status_code == 409
    assert "needs a coordinator&#39;s review before any clinic sees the request" in response.get_data(
        as_text=True
    )
    assert _assigned(lead) == []
    lead.add_event("routing_approved", actor_type="staff")  # approved earlier, then unroutable
    db.session.commit()
    response = _reroute(client, lead, "try them")
    assert response.status_code == 302 and _assigned(lead) == ["Aarhus Rehab (demo)"]


def test_of_two_coordinators_re_routing_from_the_same_page_the_later_is_refused_and_no_clinic_more_is_asked(
    app, taxonomy
):
    """Each re-route reaches at least one more clinic: a second click from a page that did not
    show the first one's offers would send the request further than anyone meant."""
    first, _ = signed_in_client(app, Role.COORDINATOR)
    second, _ = signed_in_client(app, Role.COORDINATOR)
    for n in range(6):
        _clinic(f"Clinic {n}")
    lead = LeadFactory(status="unroutable")
    db.session.commit()
    first_page = first.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    second_page = second.get(f"/staff/leads/{lead.id}").get_data(as_text=True)

    assert _reroute(first, lead, "Nobody answered", page=first_page).status_code == 302
    offered = _assigned(lead)
    refused = _reroute(second, lead, "Nobody answered", page=second_page)

    html = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "changed while you were looking at it, so no clinic was asked" in html
    assert _assigned(lead) == offered and len(offered) == 3
    # The page shown with the refusal holds what it shows now: asking more clinics is a choice.
    assert _shown_offers(html) != _shown_offers(second_page)
    assert _reroute(second, lead, "Still more", page=html).status_code == 302
    assert len(_assigned(lead)) == 4


def test_a_re_route_from_a_page_shown_before_a_clinic_answered_is_refused(app, coordinator):
    client, _ = coordinator
    aarhus, _odense = _clinic("Aarhus Rehab (demo)"), _clinic("Odense Rehab (demo)")
    lead = LeadFactory(status="routed")
    offer = AssignmentFactory(lead=lead, provider=aarhus, status="notified")
    db.session.commit()
    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    offer.status = "declined"  # Aarhus answers while the coordinator writes the reason
    db.session.commit()
    response = _reroute(client, lead, "Aarhus is slow", page=page)
    assert response.status_code == 409
    assert _assigned(lead) == ["Aarhus Rehab (demo)"]


@pytest.mark.parametrize("shown", [None, ""])
def test_a_re_route_without_what_the_page_showed_is_refused_as_out_of_date(app, coordinator, shown):
    client, _ = coordinator
    _clinic("Aarhus Rehab (demo)")
    lead = LeadFactory(status="unroutable")
    db.session.commit()
    data = {"reroute-reason": "try them"} | ({} if shown is None else {"reroute-shown_offers": shown})
    response = client.post(f"/staff/leads/{lead.id}/reroute", data=data)
    assert response.status_code == 400
    assert "The page is out of date" in response.get_data(as_text=True)
    assert _assigned(lead) == []


def test_why_no_provider_is_left_is_told_on_the_lead_page_in_the_readers_words(app, taxonomy, monkeypatch):
    """The engine's reasons are stored as codes and worded where shown: a Danish coordinator reads
    them through the catalogs (⟦…⟧ marks each translated text), never as codes or English words;
    the history's note keeps the English sentence for the export."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    tried, deactivated = _clinic("Aarhus Rehab (demo)"), _clinic("Odense Rehab (demo)")
    deactivated.active = False
    lead = LeadFactory(status="routed")
    AssignmentFactory(lead=lead, provider=tried, status="declined")
    withdrawn = LeadFactory(status="unroutable", status_reason=WITHDRAWN)
    before = LeadFactory(status="unroutable", status_reason="No provider fits: 4 already had this patient.")
    db.session.commit()

    response = _reroute(client, lead, "Aarhus declined")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "⟦No other provider fits this lead.⟧" in page
    assert _status_reason(page) == (
        "⟦No provider fits this request. Ruled out: ⟦⟦already had this patient⟧ (1)⟧, ⟦⟦deactivated⟧ (1)⟧.⟧"
    )
    event = db.session.scalar(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="rerouted"))
    assert event.note == (
        "No provider left: No provider fits this request. Ruled out: already had this patient (1), "
        "deactivated (1). Reason given: “Aarhus declined”"
    )
    withdrawn_page = client.get(f"/staff/leads/{withdrawn.id}").get_data(as_text=True)
    assert _status_reason(withdrawn_page) == f"⟦{escape(WITHDRAWN)}⟧"
    before_page = client.get(f"/staff/leads/{before.id}").get_data(as_text=True)
    assert _status_reason(before_page) == "No provider fits: 4 already had this patient."  # as it was stored


def _status_reason(html: str) -> str:
    return re.search(r"<dt>⟦Reason for status⟧</dt><dd>(.*?)</dd>", html, re.S)[1]


def test_a_fixed_status_reason_is_read_in_the_readers_language(app, taxonomy, monkeypatch):
    """Stored as what it says (`leads.notes`): the lead page words it in the reader's language."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    waiting = LeadFactory(
        status="new", treatment=_slug(Treatment, "stem-cell-als"), condition=_slug(Condition, "als")
    )
    erased = LeadFactory(status="closed_lost", status_reason="Went elsewhere")
    db.session.commit()
    assert route_lead(waiting.id) == "needs_review"
    privacy.erase_patient(erased.reference, user_id=None, door=privacy.COMMAND_LINE)

    waiting_page = client.get(f"/staff/leads/{waiting.id}").get_data(as_text=True)
    assert _status_reason(waiting_page) == (
        "⟦Investigational treatment: waiting for a coordinator to approve routing.⟧"
    )
    erased_page = client.get(f"/staff/leads/{erased.id}").get_data(as_text=True)
    assert _status_reason(erased_page) == f"⟦{escape(privacy.ERASED_NOTE.english)}⟧"


def test_the_parts_of_a_providers_score_are_named_in_the_readers_language(app, taxonomy, monkeypatch):
    """The breakdown stores each part's code (specialty_fit, …); the lead page names it."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    _clinic("Aarhus Rehab (demo)")
    lead = LeadFactory(status="new")
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    [breakdown] = re.findall(r'<table class="breakdown">(.*?)</table>', html, re.S)
    parts = re.findall(r"<tr><td>(.*?)</td>", breakdown)
    assert parts == ["⟦Specialty fit⟧", "⟦Language⟧", "⟦Response rate⟧", "⟦Response time⟧", "⟦Fairness⟧"]


def test_why_each_part_of_a_providers_score_is_read_in_the_readers_language(app, taxonomy, monkeypatch):
    """The breakdown stores numbers and codes, no words; the lead page words them."""
    read_bracketed(monkeypatch, "da")
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    _clinic("Aarhus Rehab (demo)")
    lead = LeadFactory(status="new")
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    [breakdown] = re.findall(r'<table class="breakdown">(.*?)</table>', html, re.S)
    because = re.findall(r'<td class="num">[^<]*</td><td>(.*?)</td>', breakdown)
    assert because == [
        # The condition category is a taxonomy name, translated from its own catalog entry.
        "⟦offers it as an approved treatment⟧; ⟦accepted conditions in Spinal cord injury: 1 of 1⟧",
        "⟦speaks the patient&#39;s language (engelsk)⟧",
        "⟦no answers yet: counted as average⟧",
        "⟦no answers yet: counted as average⟧",
        "⟦leads this week: 0 of 10⟧; ⟦never assigned before⟧",
    ]

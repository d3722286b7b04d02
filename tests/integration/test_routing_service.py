"""route_lead, approve_routing and reroute_lead on a real database: what a lead ends up with,
and what each provider is told."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from flask import current_app

from leads.extensions import db
from leads.messaging.email import render_pending
from leads.messaging.tokens import read_assignment_token
from leads.models import (
    Assignment,
    Condition,
    Consent,
    EmailMessage,
    Lead,
    LeadEvent,
    OutboxMessage,
    ProviderTreatment,
    Treatment,
    User,
)
from leads.notes import describe_reason
from leads.routing.candidates import providers_already_tried
from leads.routing.service import (
    RoutingError,
    approve_routing,
    reroute_lead,
    route_lead,
    route_waiting_leads,
)
from tests.factories import LeadFactory, ProviderFactory
from tests.helpers import count_rows

# Routing locks the lead and the candidate providers (FOR NO KEY UPDATE on PostgreSQL).
pytestmark = pytest.mark.pg

TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _slug(model, slug):
    return db.session.scalar(sa.select(model).filter_by(slug=slug))


def _clinic(name, *, treatment="neurorehabilitation-spinal-cord-injury", evidence="approved", **fields):
    """A provider offering `treatment` for both spinal cord injury conditions."""
    provider = ProviderFactory(
        name=name,
        conditions=[
            _slug(Condition, "spinal-cord-injury-complete"),
            _slug(Condition, "spinal-cord-injury-incomplete"),
        ],
        **fields,
    )
    provider.treatments.append(
        ProviderTreatment(treatment=_slug(Treatment, treatment), evidence_status=evidence)
    )
    db.session.flush()
    return provider


def make_staff(email="coordinator@example.dk"):
    user = User(email=email, password_hash="not used here", role="coordinator")
    db.session.add(user)
    db.session.commit()
    return user


def _lead(**fields) -> Lead:
    lead = LeadFactory(**fields)
    db.session.commit()
    return lead


def _assigned(lead) -> list[str]:
    rows = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()
    return [a.provider.name for a in rows]


def _events(lead, kind=None):
    query = sa.select(LeadEvent).filter_by(lead_id=lead.id).order_by(LeadEvent.id)
    if kind:
        query = query.filter_by(kind=kind)
    return db.session.scalars(query).all()


@pytest.fixture
def four_clinics(app, taxonomy):
    """Four providers for neurorehabilitation; the German speaker and the trial unit stand out."""
    clinics = [
        _clinic("Aarhus Rehab", languages=["da", "en", "de"]),
        _clinic("Odense Rehab", languages=["da", "en"], notification_emails=["a@odense.dk", "b@odense.dk"]),
        _clinic("Aalborg Rehab", languages=["da", "en"], evidence="clinical_trial"),
        _clinic("Roskilde Rehab", languages=["da"], evidence="investigational"),
    ]
    db.session.commit()
    return clinics


def test_a_new_lead_goes_to_the_best_three_with_assignments_events_and_one_email_per_address(four_clinics):
    lead = _lead(preferred_language="de")
    assert route_lead(lead.id) == "routed"
    db.session.expire_all()
    assert lead.status == "routed" and lead.status_reason is None
    assert _assigned(lead) == ["Aarhus Rehab", "Odense Rehab", "Aalborg Rehab"]
    assignments = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()
    assert [a.status for a in assignments] == ["notified"] * 3
    assert assignments[0].score > assignments[1].score > assignments[2].score
    assert assignments[0].score_breakdown["score"] == assignments[0].score
    assert all(a.provider.last_assigned_at is not None for a in assignments)
    assert four_clinics[3].last_assigned_at is None
    kinds = [(e.kind, e.to_status) for e in _events(lead)]
    assert kinds == [("provider_assigned", None)] * 3 + [("status_changed", "routed")]
    emails = db.session.scalars(sa.select(EmailMessage).order_by(EmailMessage.id)).all()
    expected = [
        *four_clinics[0].notification_emails,
        "a@odense.dk",
        "b@odense.dk",
        *four_clinics[2].notification_emails,
    ]
    assert sorted(e.to_address for e in emails) == sorted(expected)
    assert {e.reply_to for e in emails} == {current_app.config["COORDINATOR_EMAIL"]}
    assert {e.lead_id for e in emails} == {lead.id}
    assert {e.idempotency_key for e in emails} == {
        f"assign:{a.id}:{address}" for a in assignments for address in a.provider.notification_emails
    }
    # One task sends them all, over one connection, ahead of any patient's email.
    send_tasks = db.session.scalars(
        sa.select(OutboxMessage).filter_by(task_name="workers.send_provider_emails")
    ).all()
    assert [sorted(t.payload["email_ids"]) for t in send_tasks] == [sorted(e.id for e in emails)]


def test_routing_a_lead_twice_does_nothing_the_second_time(four_clinics):
    lead = _lead()
    assert route_lead(lead.id) == "routed"
    before = (
        count_rows(Assignment),
        count_rows(EmailMessage),
        count_rows(LeadEvent),
        count_rows(OutboxMessage),
    )
    assert route_lead(lead.id) == "skipped"
    after = (
        count_rows(Assignment),
        count_rows(EmailMessage),
        count_rows(LeadEvent),
        count_rows(OutboxMessage),
    )
    assert after == before


def test_a_lead_that_is_not_new_or_does_not_exist_is_skipped(four_clinics):
    lead = _lead(status="spam")
    assert route_lead(lead.id) == "skipped"
    assert route_lead(999_999) == "skipped"
    assert count_rows(Assignment) == 0 and _events(lead) == []


def _investigational(slug):
    """Mark a seeded treatment investigational, as an admin would on the taxonomy page."""
    treatment = _slug(Treatment, slug)
    treatment.evidence_status, treatment.requires_review = "investigational", True
    db.session.flush()


def test_a_lead_for_an_investigational_treatment_waits_for_a_coordinator(four_clinics):
    _investigational("stem-cell-spinal-cord-injury")
    _clinic("Stem Cell Unit", treatment="stem-cell-spinal-cord-injury", evidence="clinical_trial")
    lead = _lead(treatment=_slug(Treatment, "stem-cell-spinal-cord-injury"))
    assert route_lead(lead.id) == "needs_review"
    db.session.expire_all()
    assert lead.status == "needs_review"
    assert "coordinator" in describe_reason(lead.status_reason)
    assert count_rows(Assignment) == 0 and count_rows(EmailMessage) == 0
    [event] = _events(lead)
    assert (event.from_status, event.to_status, event.actor_type) == ("new", "needs_review", "system")


def test_the_evidence_gate_follows_the_treatment_setting_not_its_label(four_clinics):
    treatment = _slug(Treatment, "neurorehabilitation-spinal-cord-injury")
    treatment.requires_review = True
    lead = _lead()
    assert route_lead(lead.id) == "needs_review"


def test_a_coordinator_approval_routes_a_waiting_lead_and_names_the_coordinator(four_clinics):
    _investigational("stem-cell-spinal-cord-injury")
    _clinic("Stem Cell Unit", treatment="stem-cell-spinal-cord-injury", evidence="clinical_trial")
    db.session.commit()
    coordinator = make_staff(email="karen@example.dk")
    lead = _lead(treatment=_slug(Treatment, "stem-cell-spinal-cord-injury"))
    route_lead(lead.id)
    assert approve_routing(lead.id, coordinator.id) == "routed"
    db.session.expire_all()
    assert _assigned(lead) == ["Stem Cell Unit"]
    [approval] = _events(lead, "routing_approved")
    assert approval.actor_user_id == coordinator.id and "karen@example.dk" in approval.note
    routed = _events(lead, "status_changed")[-1]
    assert (routed.to_status, routed.actor_type, routed.actor_user_id) == ("routed", "staff", coordinator.id)
    assert approve_routing(lead.id, coordinator.id) == "skipped"
    assert count_rows(Assignment) == 1


def test_approving_a_lead_no_provider_fits_makes_it_unroutable_with_the_reason(four_clinics):
    coordinator = make_staff()
    lead = _lead(treatment=_slug(Treatment, "stem-cell-als"), condition=_slug(Condition, "als"))
    assert route_lead(lead.id) == "needs_review"
    assert approve_routing(lead.id, coordinator.id) == "unroutable"
    db.session.expire_all()
    assert lead.status_reason == '{"what":"no_provider","ruled_out":[]}'
    assert _events(lead)[-1].note == "No provider offers this treatment."


def test_approving_needs_a_known_lead_and_staff_member(four_clinics):
    lead = _lead()
    with pytest.raises(RoutingError, match="does not exist"):
        approve_routing(999_999, 1)
    lead.status = "needs_review"
    db.session.commit()
    with pytest.raises(RoutingError, match="staff member"):
        approve_routing(lead.id, 999_999)
    assert db.session.get(Lead, lead.id).status == "needs_review"


def test_a_lead_no_provider_fits_becomes_unroutable_with_the_reason_stored(four_clinics):
    aarhus, odense, aalborg, roskilde = four_clinics
    aarhus.active = False
    odense.paused_until = datetime.now(UTC) + timedelta(days=3)
    aalborg.weekly_capacity = 0
    roskilde.conditions = [_slug(Condition, "als")]
    lead = _lead()
    assert route_lead(lead.id) == "unroutable"
    db.session.expire_all()
    assert lead.status == "unroutable"
    # Stored as codes, counted; worded where shown (in English in the history, as every note).
    assert json.loads(lead.status_reason) == {
        "what": "no_provider",
        "ruled_out": [["capacity_used", 1], ["condition_not_accepted", 1], ["inactive", 1], ["paused", 1]],
    }
    assert _events(lead)[-1].note == (
        "No provider fits this request. Ruled out: weekly capacity used up (1), do not accept the "
        "condition (1), deactivated (1), paused for now (1)."
    )
    assert count_rows(EmailMessage) == 0


def test_with_no_provider_for_the_treatment_the_reason_says_so(app, taxonomy):
    lead = _lead()
    assert route_lead(lead.id) == "unroutable"
    assert db.session.get(Lead, lead.id).status_reason == '{"what":"no_provider","ruled_out":[]}'
    assert _events(lead)[-1].note == "No provider offers this treatment."


def test_a_lead_whose_patient_withdrew_consent_to_share_is_never_sent(four_clinics):
    lead = _lead()
    db.session.add(
        Consent(
            lead=lead,
            text_version="v1",
            share_with_providers=True,
            contact=True,
            source_form="test",
            withdrawn_at=datetime.now(UTC),
        )
    )
    db.session.commit()
    assert route_lead(lead.id) == "unroutable"
    assert "withdrawn" in db.session.get(Lead, lead.id).status_reason
    assert count_rows(EmailMessage) == 0


def test_weekly_capacity_counts_the_leads_since_monday_in_denmark(four_clinics):
    aarhus = four_clinics[0]
    for clinic in four_clinics[1:]:
        clinic.active = False
    aarhus.weekly_capacity = 1
    db.session.commit()
    # Sunday 23:30 in Copenhagen is last week; Monday 00:30 is this week.
    with time_machine.travel(datetime(2026, 11, 22, 22, 30, tzinfo=UTC), tick=False):
        assert route_lead(_lead().id) == "routed"
    with time_machine.travel(datetime(2026, 11, 22, 23, 30, tzinfo=UTC), tick=False):
        assert route_lead(_lead().id) == "routed"
        full = _lead()
        assert route_lead(full.id) == "unroutable"
    assert json.loads(db.session.get(Lead, full.id).status_reason)["ruled_out"] == [
        ["inactive", 3],
        ["capacity_used", 1],
    ]


def test_the_same_patient_never_gets_the_same_provider_twice_across_duplicates(four_clinics):
    # Aarhus speaks German and wins every German lead, unless it already had the patient.
    current_app.config["ROUTING_TOP_N"] = 1
    first = _lead(email="Freja@Example.org", phone="+4520000001", preferred_language="de")
    same_email = _lead(email="freja@example.org", phone="+4520000002", preferred_language="de")
    same_phone = _lead(email="other@example.org", phone="+4520000001", preferred_language="de")
    linked = _lead(
        email="x@example.org", phone="+4520000003", duplicate_of_id=first.id, preferred_language="de"
    )
    someone_else = _lead(email="anna@example.org", phone="+4520000004", preferred_language="de")
    for lead in (first, same_email, same_phone, linked, someone_else):
        assert route_lead(lead.id) == "routed"
    assert _assigned(first) == ["Aarhus Rehab"]
    for lead in (same_email, same_phone, linked):
        assert _assigned(lead) != ["Aarhus Rehab"]
    assert _assigned(someone_else) == ["Aarhus Rehab"]
    assert four_clinics[0].id in providers_already_tried(db.session.get(Lead, same_phone.id))


def test_a_provider_paused_until_a_date_gets_leads_again_from_that_date(four_clinics):
    aarhus = four_clinics[0]
    for clinic in four_clinics[1:]:
        clinic.active = False
    aarhus.paused_until = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    db.session.commit()
    with time_machine.travel(datetime(2026, 11, 26, 22, 59, tzinfo=UTC), tick=False):
        assert route_lead(_lead().id) == "unroutable"
    with time_machine.travel(datetime(2026, 11, 26, 23, 0, tzinfo=UTC), tick=False):
        assert route_lead(_lead().id) == "routed"


def test_the_provider_email_has_the_facts_and_a_signed_link_but_no_contact_or_health_details(four_clinics):
    lead = _lead(
        full_name="Zaynab Al-Hashimi",
        email="zaynab.private@example.org",
        phone="+4520999111",
        country="DE",
        preferred_language="de",
        details="Complete C5 lesion since 2019, neuropathic pain, bladder issues.",
        timeframe="3-6-months",
        budget="20000-50000-eur",
    )
    route_lead(lead.id)
    email = db.session.scalar(
        sa.select(EmailMessage).where(EmailMessage.to_address == four_clinics[0].notification_emails[0])
    )
    assert email.template == "provider_notification"
    # Routing stores what renders it; the worker that sends it renders it (as below).
    assert (email.subject, email.body_text) == ("", "") and email.render_context
    stored = str(email.render_context)
    render_pending(email)
    assert email.subject == f"New quote request {lead.reference}"
    for line in (
        f"Reference: {lead.reference}",
        "Treatment: Intensive neurorehabilitation after spinal cord injury",
        "Condition category: Spinal cord injury",
        "Patient's country: Germany",
        "Patient's language: German",
        "Timeframe: In 3 to 6 months",
        "Budget: €20,000 to €50,000",
    ):
        assert line in email.body_text.splitlines()
        assert line.split(": ", 1)[1] in email.body_html
    for body in (email.body_text, email.body_html):
        for secret in (
            "Zaynab",
            "Al-Hashimi",
            "zaynab.private",
            "example.org",
            "4520999111",
            "+45 20",
            "C5 lesion",  # not "C5" alone: a random reference or link may hold those two letters
            "neuropathic",
            "bladder",
            "Spinal cord injury (incomplete)",
        ):
            assert secret not in body
            assert secret not in stored
    link = next(word for word in email.body_text.split() if "/p/" in word)
    assert link.startswith(f"{current_app.config['BASE_URL']}/p/")
    assignment = db.session.scalar(
        sa.select(Assignment).filter_by(lead_id=lead.id, provider_id=four_clinics[0].id)
    )
    assert read_assignment_token(link.rsplit("/", 1)[1], max_age_seconds=60) == assignment.id
    assert f'href="{link}"' in email.body_html


def test_a_provider_reading_danish_gets_the_email_in_danish_and_one_reading_english_in_english(four_clinics):
    aarhus, english = four_clinics[0], four_clinics[1]
    aarhus.notification_language = "da"
    english.notification_language = "en"
    db.session.commit()
    lead = _lead(preferred_language="de", country="SE", timeframe="as-soon-as-possible", budget="not-sure")
    route_lead(lead.id)

    def email_to(provider):
        return db.session.scalar(
            sa.select(EmailMessage).where(EmailMessage.to_address == provider.notification_emails[0])
        )

    danish, in_english = email_to(aarhus), email_to(english)
    render_pending(danish)
    render_pending(in_english)
    assert danish.template == "provider_notification"
    assert danish.subject == f"Ny tilbudsforespørgsel {lead.reference}"
    for fact in (
        "Behandling:",
        "Sverige",
        "Tysk",
        "Så hurtigt som muligt",
        "Jeg ved det ikke endnu",
        "Reference: " + lead.reference,
    ):
        assert fact in danish.body_text
    assert '<html lang="da" dir="ltr">' in danish.body_html

    assert in_english.template == "provider_notification"
    assert in_english.subject == f"New quote request {lead.reference}"
    for fact in ("Treatment:", "Sweden", "German", "As soon as possible", "I am not sure yet"):
        assert fact in in_english.body_text
    assert "Behandling" not in in_english.body_text
    assert '<html lang="en" dir="ltr">' in in_english.body_html


def test_reroute_offers_the_lead_to_the_next_best_not_yet_tried_then_gives_up_with_a_reason(four_clinics):
    current_app.config["ROUTING_TOP_N"] = 1
    coordinator = make_staff()
    lead = _lead(preferred_language="de")
    route_lead(lead.id)
    assert _assigned(lead) == ["Aarhus Rehab"]
    db.session.scalar(sa.select(Assignment).filter_by(lead_id=lead.id)).status = "declined"
    [second] = reroute_lead(
        lead.id, actor_type="staff", actor_user_id=coordinator.id, reason="Aarhus declined."
    )
    assert (second.provider.name, second.rank) == ("Odense Rehab", 2)
    event = _events(lead, "rerouted")[-1]
    assert (event.actor_type, event.actor_user_id) == ("staff", coordinator.id)
    assert event.note == "Sent to: Odense Rehab. Reason given: “Aarhus declined.”"
    for _ in range(2):
        db.session.scalar(
            sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank.desc())
        ).status = "expired"
        assert len(reroute_lead(lead.id, actor_type="system", reason="No answer.")) == 1
    db.session.scalar(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank.desc())
    ).status = "expired"
    assert reroute_lead(lead.id, actor_type="system", reason="No answer.") == []
    db.session.expire_all()
    assert _assigned(lead) == ["Aarhus Rehab", "Odense Rehab", "Aalborg Rehab", "Roskilde Rehab"]
    assert lead.status == "unroutable"
    assert json.loads(lead.status_reason)["ruled_out"] == [["already_tried", 4]]
    assert _events(lead, "rerouted")[-1].note == (
        "No provider left: No provider fits this request. Ruled out: already had this patient (4). "
        "Reason given: “No answer.”"
    )


def test_reroute_of_an_unroutable_lead_routes_it_again_when_a_provider_appears(four_clinics):
    for clinic in four_clinics:
        clinic.active = False
    db.session.commit()
    lead = _lead()
    assert route_lead(lead.id) == "unroutable"
    four_clinics[1].active = True
    db.session.commit()
    [assignment] = reroute_lead(lead.id, actor_type="staff", reason="Odense is back.", limit=1)
    assert assignment.provider.name == "Odense Rehab"
    db.session.expire_all()
    assert lead.status == "routed"


def test_reroute_tops_up_to_the_configured_number_of_open_assignments(four_clinics):
    current_app.config["ROUTING_TOP_N"] = 3
    lead = _lead()
    route_lead(lead.id)
    first = db.session.scalar(sa.select(Assignment).filter_by(lead_id=lead.id, rank=1))
    first.status = "expired"
    assert [a.provider.name for a in reroute_lead(lead.id, actor_type="system", reason="Expired.")] == [
        "Roskilde Rehab"
    ]
    assert len([a for a in db.session.get(Lead, lead.id).assignments if a.status == "notified"]) == 3


@pytest.mark.parametrize("status", ["new", "needs_review", "spam", "duplicate", "withdrawn", "closed_lost"])
def test_reroute_refuses_a_lead_in_a_status_that_cannot_be_rerouted(four_clinics, status):
    lead = _lead(status=status)
    with pytest.raises(RoutingError, match=f"status '{status}' cannot be re-routed"):
        reroute_lead(lead.id, actor_type="staff", reason="Try again.")
    assert count_rows(Assignment) == 0


def test_reroute_for_no_provider_at_all_is_refused(four_clinics):
    lead = _lead()
    route_lead(lead.id)
    with pytest.raises(RoutingError, match="at least one provider"):
        reroute_lead(lead.id, actor_type="staff", reason="x", limit=0)
    assert db.session.get(Lead, lead.id).status == "routed"


def test_reroute_of_a_missing_lead_is_a_clear_error(app):
    with pytest.raises(RoutingError, match="does not exist"):
        reroute_lead(123_456, actor_type="staff", reason="x")


def test_a_lead_left_new_by_a_lost_task_is_routed_by_the_sweep(four_clinics):
    stuck = _lead(created_at=datetime.now(UTC) - timedelta(minutes=5))
    fresh = _lead()
    assert route_waiting_leads(timedelta(minutes=2)) == 1
    assert db.session.get(Lead, stuck.id).status == "routed"
    assert db.session.get(Lead, fresh.id).status == "new"


def test_the_sweep_drains_a_backlog_in_one_run_batch_by_batch(four_clinics):
    stuck = [_lead(created_at=datetime.now(UTC) - timedelta(minutes=5)) for _ in range(7)]
    db.session.commit()

    assert route_waiting_leads(timedelta(minutes=2), batch=3) == 7

    db.session.expire_all()
    assert all(db.session.get(Lead, lead.id).status != "new" for lead in stuck)
    assert route_waiting_leads(timedelta(minutes=2), batch=3) == 0

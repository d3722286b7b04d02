"""One sharing rule guards every way a lead reaches a provider: routing, reminders, the
provider's page and each provider email at the moment it would be sent. A patient's withdrawal
and a coordinator's closing end assignments with statuses of their own, never held against the
providers who were asked."""

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.messaging.email import deliver_email, email_coordinators
from leads.messaging.urls import provider_link, public_url
from leads.models import Assignment, Consent, EmailMessage, Lead, Provider
from leads.patients.self_service import withdraw_consent
from leads.routing import candidates
from leads.routing.escalation import escalate_assignments
from leads.routing.responses import accept, decline
from leads.routing.service import route_lead
from leads.staff.lead_actions import change_status
from leads.timeutil import utcnow
from tests.factories import LeadFactory, UserFactory
from tests.helpers import load_demo_providers_reading_english

# SQL functions, guarded updates and row locks: run again on PostgreSQL.
pytestmark = pytest.mark.pg


def _routed_lead(*, load_providers=True):
    if load_providers:
        load_demo_providers_reading_english()
    lead = LeadFactory()
    db.session.add(
        Consent(lead=lead, text_version="v1", share_with_providers=True, contact=True, source_form="t")
    )
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    return lead


def _close(lead_id):
    lead = db.session.get(Lead, lead_id)
    lead.change_status("closed_lost", actor_type="staff", note="Patient chose another country.")
    db.session.commit()


def test_a_provider_email_queued_before_the_lead_was_closed_is_cancelled_not_sent(app, taxonomy, mail_sink):
    lead = _routed_lead()
    _close(lead.id)
    queued = db.session.scalars(
        sa.select(EmailMessage).where(EmailMessage.template.startswith("provider_"))
    ).all()
    assert queued

    assert {deliver_email(email.id) for email in queued} == {"cancelled"}
    assert all("closed" in email.last_error for email in queued)
    assert mail_sink.messages() == []


def test_a_withdrawal_while_a_provider_email_is_claimed_stops_it_before_the_server(
    app, taxonomy, mail_sink, monkeypatch
):
    """The claim is taken, then the patient withdraws while the worker prepares the message:
    the email is cancelled at the last check, right before the server is reached."""
    import leads.messaging.email as email_module

    lead = _routed_lead()
    [first, *_] = db.session.scalars(
        sa.select(EmailMessage).where(EmailMessage.template.startswith("provider_"))
    ).all()
    build_mime = email_module.build_mime

    def withdraw_meanwhile(email, mail_from):
        message = build_mime(email, mail_from)
        assert email.status == "sending"  # claimed: the withdrawal's cancelling passes it by
        withdraw_consent(lead.id)
        return message

    monkeypatch.setattr(email_module, "build_mime", withdraw_meanwhile)
    assert deliver_email(first.id) == "cancelled"
    db.session.refresh(first)
    assert first.attempts == 0 and "withdrawn" in first.last_error
    assert mail_sink.messages() == []


def test_no_reminder_goes_out_about_a_closed_lead(app, taxonomy):
    lead = _routed_lead()
    _close(lead.id)
    now = utcnow()
    result = escalate_assignments(now=now.replace(year=now.year + 1))

    assert result.reminded == 0
    reminders = sa.select(sa.func.count()).where(EmailMessage.template.startswith("provider_reminder"))
    assert db.session.scalar(reminders) == 0


def test_the_provider_page_of_a_closed_lead_shows_no_patient_data(client, app, taxonomy):
    lead = _routed_lead()
    assignment = db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id)).first()
    _close(lead.id)

    page = client.get(provider_link(assignment.id).split("127.0.0.1:5000", 1)[1])

    assert page.status_code == 410
    body = page.get_data(as_text=True)
    assert "closed" in body and lead.full_name not in body and lead.email not in body


def test_links_in_emails_come_from_base_url_never_from_the_request(app, taxonomy):
    lead = LeadFactory()
    db.session.flush()
    with app.test_request_context("/", method="POST", base_url="http://attacker.example"):
        email_id = email_coordinators(
            lead, template="coordinator_patient_request", idempotency_key="k", summary="s"
        )
    email = db.session.get(EmailMessage, email_id)
    assert f"http://127.0.0.1:5000/staff/leads/{lead.id}" in email.body_text
    assert "attacker" not in email.body_text
    assert public_url("public.quote") == "http://127.0.0.1:5000/quote"


def test_a_coordinator_closing_a_lead_releases_waiting_providers_without_holding_it_against_them(
    app, taxonomy
):
    lead = _routed_lead()
    coordinator = UserFactory()
    db.session.commit()

    change_status(lead.id, coordinator.id, "closed_lost", note="Patient found a clinic at home.")
    db.session.commit()

    db.session.expire_all()
    statuses = {a.status for a in db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id))}
    assert statuses == {"closed"}
    provider_emails = db.session.scalars(
        sa.select(EmailMessage.status).where(EmailMessage.template.startswith("provider_"))
    ).all()
    assert set(provider_emails) == {"cancelled"}
    assert escalate_assignments(now=utcnow().replace(year=utcnow().year + 1)).expired == 0


def test_closing_a_lead_releases_only_the_providers_still_waiting_an_acceptance_stays(app, taxonomy):
    """Only the clinic the patient chose is closed with its choice (`end_choice`): a clinic that
    accepted keeps its assignment, should the lead be reopened."""
    lead = _routed_lead()
    taken, waiting = db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id)).all()[:2]
    accept(taken.id, note=None)
    coordinator = UserFactory()
    db.session.commit()

    change_status(lead.id, coordinator.id, "closed_lost", note="Patient found a clinic at home.")
    db.session.commit()

    db.session.expire_all()
    assert (db.session.get(Assignment, taken.id).status, db.session.get(Assignment, waiting.id).status) == (
        "accepted",
        "closed",
    )


def _provider_statistics() -> dict:
    providers = db.session.scalars(sa.select(Provider).order_by(Provider.id)).all()
    profiles = {p.id: p for p in candidates.provider_profiles(providers, utcnow())}
    return {
        p.id: (
            p.response_count,
            p.accepted_count,
            p.median_response_seconds,
            profiles[p.id].unanswered_count,
            profiles[p.id].response_count,
        )
        for p in providers
    }


def test_a_withdrawal_leaves_every_providers_statistics_unchanged(app, taxonomy):
    answered = _routed_lead()
    first = db.session.scalars(sa.select(Assignment).filter_by(lead_id=answered.id)).first()
    accept(first.id, note=None)
    lead = _routed_lead(load_providers=False)
    before = _provider_statistics()

    assert withdraw_consent(lead.id)

    db.session.expire_all()
    assert _provider_statistics() == before
    statuses = {a.status for a in db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id))}
    assert statuses == {"withdrawn"}


def test_a_withdrawn_assignment_is_never_expired_by_the_escalation_sweep(app, taxonomy):
    lead = _routed_lead()
    withdraw_consent(lead.id)
    far_future = utcnow().replace(year=utcnow().year + 1)

    result = escalate_assignments(now=far_future)

    assert (result.reminded, result.expired) == (0, 0)
    db.session.expire_all()
    assert {a.status for a in db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id))} == {
        "withdrawn"
    }


def _provider_path(assignment):
    return provider_link(assignment.id).split("127.0.0.1:5000", 1)[1]


def test_a_deactivated_provider_no_longer_sees_or_answers_the_request(client, app, taxonomy):
    lead = _routed_lead()
    assignment = db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id)).first()
    assignment.provider.active = False
    db.session.commit()

    page = client.get(_provider_path(assignment))
    assert page.status_code == 410
    assert lead.full_name not in page.get_data(as_text=True)
    assert client.post(_provider_path(assignment) + "/accept", data={}).status_code == 410
    db.session.expire_all()
    assert db.session.get(Assignment, assignment.id).status == "notified"


def test_after_declining_a_provider_sees_only_their_own_answer(client, app, taxonomy):
    lead = _routed_lead()
    assignment = db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id)).first()
    decline(assignment.id, reason="no_capacity", note="Full until spring.")

    body = client.get(_provider_path(assignment)).get_data(as_text=True)

    assert "You declined this request" in body and "Full until spring." in body
    for private in (lead.full_name, lead.email, lead.phone, lead.details):
        assert private not in body


def test_withdrawing_from_a_repeat_withdraws_the_first_request_it_is_handled_with(app, taxonomy):
    """The repeat's page says the two are handled together: the clinics that have the first one
    are told, and nothing of either is shared any more."""
    first = _routed_lead()
    repeat = LeadFactory(email=first.email, status="duplicate", duplicate_of=first)
    unrelated = _routed_lead(load_providers=False)
    db.session.commit()

    assert withdraw_consent(repeat.id)

    db.session.expire_all()
    assert {db.session.get(Lead, lead.id).status for lead in (first, repeat)} == {"withdrawn"}
    assert {a.status for a in db.session.scalars(sa.select(Assignment).filter_by(lead_id=first.id))} == {
        "withdrawn"
    }
    assert db.session.get(Lead, unrelated.id).status == "routed"
    assert withdraw_consent(first.id) is False  # once


def test_withdrawing_from_a_repeat_sent_from_the_address_in_another_case_withdraws_both(app, taxonomy):
    """The same address in any case, letters beyond A to Z too (by the stored `email_key`)."""
    first = _routed_lead()
    first.email = "ØRSTED@example.org"
    repeat = LeadFactory(email="øRSTED@example.org", status="duplicate", duplicate_of=first)
    db.session.commit()

    assert withdraw_consent(repeat.id)

    db.session.expire_all()
    assert {db.session.get(Lead, lead.id).status for lead in (first, repeat)} == {"withdrawn"}


def test_a_repeat_marked_by_phone_alone_cannot_withdraw_another_address_s_request(app, taxonomy):
    """Intake marks a request a repeat by its phone number alone, but the link of a request sent
    from another address proves nothing about the first one's patient (a shared or known number):
    withdrawing from it withdraws it alone, and the first request's clinics hear nothing."""
    first = _routed_lead()
    stranger = LeadFactory(
        email="someone.else@example.org", phone=first.phone, status="duplicate", duplicate_of=first
    )
    same_person = LeadFactory(email=first.email.upper(), status="duplicate", duplicate_of=stranger)
    db.session.commit()

    assert withdraw_consent(stranger.id)

    db.session.expire_all()
    assert db.session.get(Lead, stranger.id).status == "withdrawn"
    assert db.session.get(Lead, first.id).status == "routed"
    assert db.session.get(Lead, same_person.id).status == "duplicate"
    assert (
        db.session.scalars(
            sa.select(EmailMessage.template).where(
                EmailMessage.lead_id == first.id, EmailMessage.template == "notice_provider_withdrawn"
            )
        ).all()
        == []
    )

    assert withdraw_consent(same_person.id)  # from the first request's address: both of theirs
    db.session.expire_all()
    assert {db.session.get(Lead, lead.id).status for lead in (first, same_person)} == {"withdrawn"}

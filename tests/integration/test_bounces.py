"""A dead address re-routes: when every notification address of a provider refuses the email
about a lead (5xx), its assignment expires at once and the next-best provider is asked; each
refusing address is flagged to admins until one of them confirms it, and repeated bounces pause
the provider with an email to the coordinators."""

import pytest
import sqlalchemy as sa

from leads.directory.csv_io import import_providers
from leads.extensions import db
from leads.messaging import email as email_module
from leads.messaging.email import deliver_email, queue_email
from leads.models import AddressBounce, Assignment, Consent, EmailMessage, LeadEvent, Provider, Role
from leads.routing import bounces
from leads.routing.service import route_lead
from leads.timeutil import utcnow
from tests.factories import LeadFactory
from tests.staff_support import signed_in_client

pytestmark = pytest.mark.pg

NO_SUCH_USER = "550 5.1.1 No such user here"
TREATMENT = "neurorehabilitation-spinal-cord-injury"
CONDITION = "spinal-cord-injury-incomplete"


def _providers():
    rows = [
        "name,city,region,notification_emails,languages,notification_language,weekly_capacity,"
        "treatments,conditions",
        f"Two Doors Clinic,Aarhus,Midtjylland,a@two-doors.example; b@two-doors.example,da; en,en,50,"
        f"{TREATMENT}:approved,{CONDITION}",
    ]
    rows += [
        f"Clinic {n},Odense,Syddanmark,intake@clinic{n}.example,da; en,en,50,{TREATMENT}:approved,{CONDITION}"
        for n in range(1, 4)
    ]
    import_providers("\n".join(rows) + "\n")
    db.session.commit()
    return db.session.scalar(sa.select(Provider).filter_by(name="Two Doors Clinic"))


def _routed_lead():
    lead = LeadFactory()
    db.session.add(
        Consent(lead=lead, text_version="v1", share_with_providers=True, contact=True, source_form="t")
    )
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    return lead


def _deliver(email_id):
    """What the send tasks do, in this test's session."""
    return bounces.deliver_and_handle_bounces([email_id])[email_id]


def _assignment_of(lead, provider):
    return db.session.scalar(sa.select(Assignment).filter_by(lead_id=lead.id, provider_id=provider.id))


def _notifications(assignment):
    return db.session.scalars(
        sa.select(EmailMessage).where(EmailMessage.idempotency_key.startswith(f"assign:{assignment.id}:"))
    ).all()


@pytest.fixture
def two_doors(app, taxonomy, mail_sink):
    return _providers()


def _lead_reaching(provider):
    for _ in range(4):
        lead = _routed_lead()
        assignment = _assignment_of(lead, provider)
        if assignment is not None:
            return lead, assignment
    pytest.fail("the clinic was never among the providers asked")


def test_every_address_refusing_expires_the_assignment_and_asks_the_next_provider(two_doors, mail_sink):
    lead, assignment = _lead_reaching(two_doors)
    for address in two_doors.notification_emails:
        mail_sink.refuse[address] = NO_SUCH_USER
    before = {a.provider_id for a in lead.assignments}

    assert [_deliver(email.id) for email in _notifications(assignment)] == ["failed", "failed"]

    db.session.refresh(assignment)
    assert assignment.status == "expired"
    assert two_doors.unanswered_count == 1  # counted against the provider's response rate
    db.session.refresh(lead)
    assert lead.status == "routed"
    newcomers = [a for a in lead.assignments if a.provider_id not in before]
    assert len(newcomers) == 1 and newcomers[0].status == "notified"
    assert _notifications(newcomers[0])  # the next provider is told
    [expired] = db.session.scalars(
        sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="assignment_expired")
    ).all()
    assert "Two Doors Clinic" in expired.note and NO_SUCH_USER in expired.note
    flags = db.session.scalars(sa.select(AddressBounce).order_by(AddressBounce.address)).all()
    assert [(f.address, f.answer, f.bounces) for f in flags] == [
        ("a@two-doors.example", NO_SUCH_USER, 1),
        ("b@two-doors.example", NO_SUCH_USER, 1),
    ]


def test_bounces_a_send_recorded_before_its_task_failed_are_handled_by_the_retry_once(
    two_doors, mail_sink, monkeypatch
):
    lead, assignment = _lead_reaching(two_doors)
    for address in two_doors.notification_emails:
        mail_sink.refuse[address] = NO_SUCH_USER
    ids = [email.id for email in _notifications(assignment)]

    def locked(*args):
        raise sa.exc.OperationalError("UPDATE address_bounce", {}, Exception("database is locked"))

    with monkeypatch.context() as patched:
        patched.setattr(bounces, "_flag", locked)
        with pytest.raises(sa.exc.OperationalError):  # the task's first run, which Celery retries
            bounces.deliver_and_handle_bounces(ids)
    db.session.rollback()
    assert {db.session.get(EmailMessage, i).status for i in ids} == {"failed"}
    db.session.refresh(assignment)
    assert assignment.status == "notified"  # the bounce is not handled yet

    assert bounces.deliver_and_handle_bounces(ids) == {i: "skipped" for i in ids}  # the retry
    db.session.refresh(assignment)
    assert assignment.status == "expired"
    assert len([a for a in db.session.get(type(lead), lead.id).assignments if a.status == "notified"]) == 3
    bounces.deliver_and_handle_bounces(ids)  # a redelivery: handled once, counted once
    flags = db.session.scalars(sa.select(AddressBounce).order_by(AddressBounce.address)).all()
    assert [(f.address, f.bounces) for f in flags] == [("a@two-doors.example", 1), ("b@two-doors.example", 1)]


def test_bounces_whose_send_task_was_lost_are_handled_by_the_due_email_sweep_once(two_doors, mail_sink):
    """The task recorded the refusals and died before handling them, and is never delivered again
    (its whole worker killed; the broker's copy lost or waiting for its visibility timeout)."""
    lead, assignment = _lead_reaching(two_doors)
    for address in two_doors.notification_emails:
        mail_sink.refuse[address] = NO_SUCH_USER
    ids = [email.id for email in _notifications(assignment)]
    mail_sink.refuse[lead.email] = NO_SUCH_USER
    to_patient_id = queue_email(
        template="test_message",
        to=lead.email,
        idempotency_key="to-patient",
        lead_id=lead.id,
        sent_at=utcnow(),
    )
    db.session.commit()
    assert set(email_module.deliver_emails([*ids, to_patient_id]).values()) == {"failed"}  # not handled

    first, second = sorted(ids)  # the first handled finds both refused: the assignment expires then
    assert bounces.handle_bounces_left() == {first: "rerouted", second: "flagged"}
    db.session.refresh(assignment)
    assert assignment.status == "expired"
    assert len([a for a in db.session.get(type(lead), lead.id).assignments if a.status == "notified"]) == 3
    assert bounces.handle_bounces_left() == {}  # once; and never the patient's email
    flags = db.session.scalars(sa.select(AddressBounce).order_by(AddressBounce.address)).all()
    assert [(f.address, f.bounces) for f in flags] == [("a@two-doors.example", 1), ("b@two-doors.example", 1)]


@pytest.mark.parametrize("handled_by", ["the send task", "the due-email sweep"])
def test_a_bounce_whose_handling_keeps_failing_holds_up_none_of_the_others(
    two_doors, mail_sink, monkeypatch, caplog, handled_by
):
    """The handling of one refusal raises every time (broken data, a bug): it is rolled back,
    logged by the email's id alone and left for the next run; the refusals after it are handled."""
    lead, assignment = _lead_reaching(two_doors)
    for address in two_doors.notification_emails:
        mail_sink.refuse[address] = NO_SUCH_USER
    ids = sorted(email.id for email in _notifications(assignment))
    assert set(email_module.deliver_emails(ids).values()) == {"failed"}
    broken, other = ids
    real_handle = bounces.handle_hard_bounce

    def handle(email_id):
        if email_id == broken:
            raise RuntimeError("a@two-doors.example: broken data")
        return real_handle(email_id)

    def run():
        return bounces.handle_bounces(ids) if handled_by == "the send task" else bounces.handle_bounces_left()

    with monkeypatch.context() as patched, caplog.at_level("ERROR", logger=bounces.__name__):
        patched.setattr(bounces, "handle_hard_bounce", handle)
        assert run() == {broken: bounces.NOT_HANDLED, other: "rerouted"}
        assert run() == {broken: bounces.NOT_HANDLED}  # every run tries it again, and only it
    db.session.refresh(assignment)
    assert assignment.status == "expired"
    assert db.session.get(EmailMessage, broken).bounce_handled_at is None
    assert f"email {broken}: its bounce could not be handled (RuntimeError)" in caplog.text
    assert "two-doors.example" not in caplog.text

    assert run() == {broken: "flagged"}  # mended: the next run handles it
    flags = db.session.scalars(sa.select(AddressBounce).order_by(AddressBounce.address)).all()
    assert [(f.address, f.bounces) for f in flags] == [("a@two-doors.example", 1), ("b@two-doors.example", 1)]


def test_the_sweep_goes_past_more_failing_bounces_than_a_batch_holds(two_doors, mail_sink, monkeypatch):
    """Bounces whose handling keeps failing, as many as a run handles (here one): the run goes on
    past them, in id order, to the bounce behind them, and handles a batch's worth."""
    lead, assignment = _lead_reaching(two_doors)
    for address in two_doors.notification_emails:
        mail_sink.refuse[address] = NO_SUCH_USER
    ids = sorted(email.id for email in _notifications(assignment))
    assert set(email_module.deliver_emails(ids).values()) == {"failed"}
    broken, behind = ids
    real_handle = bounces.handle_hard_bounce

    def handle(email_id):
        if email_id == broken:
            raise RuntimeError("broken data")
        return real_handle(email_id)

    monkeypatch.setattr(bounces, "handle_hard_bounce", handle)

    assert bounces.handle_bounces_left(limit=1) == {broken: bounces.NOT_HANDLED, behind: "rerouted"}
    assert db.session.get(EmailMessage, behind).bounce_handled_at is not None
    db.session.refresh(assignment)
    assert assignment.status == "expired"
    assert bounces.handle_bounces_left(limit=1) == {broken: bounces.NOT_HANDLED}  # tried again, alone


def test_one_address_of_two_refusing_flags_it_and_the_provider_keeps_the_lead(two_doors, mail_sink):
    lead, assignment = _lead_reaching(two_doors)
    mail_sink.refuse["a@two-doors.example"] = NO_SUCH_USER

    assert sorted(_deliver(email.id) for email in _notifications(assignment)) == ["failed", "sent"]

    db.session.refresh(assignment)
    assert assignment.status == "notified"
    assert len(lead.assignments) == 3
    [flag] = db.session.scalars(sa.select(AddressBounce)).all()
    assert (flag.address, flag.answer) == ("a@two-doors.example", NO_SUCH_USER)


def test_a_notification_that_cannot_be_made_in_its_clinics_language_fails_alone_and_is_no_bounce(
    two_doors, mail_sink, monkeypatch
):
    """A catalog whose translation names a placeholder the code does not pass keeps one clinic's
    email from rendering: it fails with the reason in the lead's history, the lead's other provider
    emails go out in the same task, and nothing counts against the clinic or its address."""
    lead, assignment = _lead_reaching(two_doors)
    provider_emails = db.session.scalars(
        sa.select(EmailMessage.id).where(EmailMessage.lead_id == lead.id).order_by(EmailMessage.id)
    ).all()
    broken = _notifications(assignment)[0]
    broken.render_context = {**broken.render_context, "language": "da"}
    db.session.commit()
    real_render = email_module.render_email

    def render(template, language="en", **context):
        if language == "da":  # msgstr "… %(klinik)s" where the code passes `clinic`
            raise KeyError("klinik")
        return real_render(template, language, **context)

    monkeypatch.setattr(email_module, "render_email", render)
    statuses = bounces.deliver_and_handle_bounces(list(provider_emails))

    assert statuses.pop(broken.id) == "failed"
    assert set(statuses.values()) == {"sent"} and len(statuses) >= 3
    assert len(mail_sink.messages()) == len(statuses)
    db.session.refresh(broken)
    assert broken.last_error == "Not sent: it could not be made (KeyError: 'klinik')"
    db.session.refresh(assignment)
    assert assignment.status == "notified"
    assert db.session.scalars(sa.select(AddressBounce)).all() == []
    [event] = db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="email_failed")).all()
    assert "provider_notification" in event.note and "could not be made" in event.note


def test_a_failure_that_is_not_a_provider_notification_changes_nothing(two_doors, mail_sink):
    lead, _ = _lead_reaching(two_doors)
    to_patient_id = queue_email(
        template="test_message",
        to=lead.email,
        idempotency_key="to-patient",
        lead_id=lead.id,
        sent_at=utcnow(),
    )
    db.session.commit()
    mail_sink.refuse[lead.email] = NO_SUCH_USER
    assert deliver_email(to_patient_id) == "failed"
    assert bounces.handle_hard_bounce(to_patient_id) == "ignored"
    assert db.session.scalars(sa.select(AddressBounce)).all() == []


def test_repeated_bounces_pause_the_provider_and_tell_the_coordinators(two_doors, mail_sink, app):
    app.config["PROVIDER_BOUNCES_BEFORE_PAUSE"] = 2
    app.config["ROUTING_TOP_N"] = 4  # every clinic is asked, however its record stands
    for address in two_doors.notification_emails:
        mail_sink.refuse[address] = NO_SUCH_USER
    for round_number in (1, 2):
        lead, assignment = _lead_reaching(two_doors)
        for email in _notifications(assignment):
            _deliver(email.id)
        db.session.refresh(two_doors)
        assert two_doors.active is (round_number == 1)

    told = db.session.scalars(sa.select(EmailMessage).filter_by(template="coordinator_provider_paused")).all()
    assert len(told) == 1 and "Two Doors Clinic was paused" in told[0].body_text
    assert NO_SUCH_USER in told[0].body_text
    assert db.session.scalars(sa.select(LeadEvent).filter_by(kind="provider_paused")).all()


def test_a_provider_paused_after_one_lead_is_said_so_in_the_singular(two_doors, mail_sink, app):
    """The count takes its plural form in the history and in the coordinators' email alike."""
    app.config["PROVIDER_BOUNCES_BEFORE_PAUSE"] = 1
    for address in two_doors.notification_emails:
        mail_sink.refuse[address] = NO_SUCH_USER
    _, assignment = _lead_reaching(two_doors)
    for email in _notifications(assignment):
        _deliver(email.id)

    [told] = db.session.scalars(
        sa.select(EmailMessage).filter_by(template="coordinator_provider_paused")
    ).all()
    [paused] = db.session.scalars(sa.select(LeadEvent).filter_by(kind="provider_paused")).all()
    said = (
        "Two Doors Clinic was paused: every one of its notification addresses refused the email about 1 lead"
    )
    assert f"{said}.\n" in told.body_text
    assert paused.note == said


def test_the_directory_shows_the_refused_address_until_an_admin_confirms_it(two_doors, mail_sink, app):
    lead, assignment = _lead_reaching(two_doors)
    mail_sink.refuse["a@two-doors.example"] = NO_SUCH_USER
    for email in _notifications(assignment):
        _deliver(email.id)
    [flag] = db.session.scalars(sa.select(AddressBounce)).all()
    admin, _ = signed_in_client(app, Role.ADMIN)

    page = admin.get("/staff/admin/providers").get_data(as_text=True)
    assert "a@two-doors.example" in page and NO_SUCH_USER in page

    other = db.session.scalar(sa.select(Provider).filter_by(name="Clinic 1"))
    wrong = admin.post(f"/staff/admin/providers/{other.id}/bounces/{flag.id}/confirm")
    assert wrong.status_code == 404  # a flag is confirmed only on its own provider

    response = admin.post(f"/staff/admin/providers/{two_doors.id}/bounces/{flag.id}/confirm")
    assert response.status_code == 302
    assert db.session.scalars(sa.select(AddressBounce)).all() == []
    page = admin.get("/staff/admin/providers").get_data(as_text=True)
    assert "is no longer flagged" in page and NO_SUCH_USER not in page


def test_confirming_needs_the_admin_role(two_doors, app):
    coordinator, _ = signed_in_client(app, Role.COORDINATOR)
    assert coordinator.post(f"/staff/admin/providers/{two_doors.id}/bounces/1/confirm").status_code == 403

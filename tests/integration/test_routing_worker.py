"""Routing end to end on real parts: the quote form, Redis, Celery worker processes and an SMTP
server. A submitted lead reaches its providers by email within seconds, exactly once."""

from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa
from flask import current_app

from leads.extensions import db
from leads.messaging import outbox
from leads.messaging.email import queue_email
from leads.messaging.tokens import read_assignment_token
from leads.models import (
    Assignment,
    Condition,
    EmailMessage,
    Lead,
    LeadEvent,
    Provider,
    ProviderTreatment,
    Treatment,
)
from leads.timeutil import utcnow
from tests.conftest import WORKER_REDIS_DB
from tests.factories import LeadFactory, ProviderFactory
from tests.helpers import wait_until
from tests.quote_support import answers, client_with_own_address
from tests.servers import Worker

NEURO = "neurorehabilitation-spinal-cord-injury"


def _read(query):
    """Read, then end the transaction at once: an open SQLite transaction would block the worker."""
    value = query()
    db.session.rollback()
    return value


def _slug(model, slug):
    return db.session.scalar(sa.select(model).filter_by(slug=slug))


def _clinic(name, addresses, *, capacity=10, language="en", speaks=("da", "en")):
    provider = ProviderFactory(
        name=name,
        notification_emails=list(addresses),
        notification_language=language,
        languages=list(speaks),
        weekly_capacity=capacity,
        conditions=[
            _slug(Condition, "spinal-cord-injury-complete"),
            _slug(Condition, "spinal-cord-injury-incomplete"),
        ],
    )
    provider.treatments.append(
        ProviderTreatment(treatment=_slug(Treatment, NEURO), evidence_status="approved")
    )
    return provider


def _lead_status(lead_id):
    return _read(lambda: db.session.scalar(sa.select(Lead.status).filter_by(id=lead_id)))


def _unsent_emails():
    return _read(
        lambda: db.session.scalar(
            sa.select(sa.func.count(EmailMessage.id)).where(EmailMessage.status.in_(["queued", "sending"]))
        )
    )


def _all_emails_sent(timeout=30):
    wait_until(lambda: _unsent_emails() == 0, timeout=timeout)


def _received(mail_sink):
    return [message_from_bytes(path.read_bytes(), policy=policy.default) for path in mail_sink.messages()]


def _drain(app):
    """A marker email sent after everything queued before it: the worker is idle again."""
    marker_id = queue_email(
        template="test_message",
        to="marker@example.org",
        idempotency_key=f"marker:{utcnow()}",
        sent_at=utcnow(),
    )
    db.session.commit()
    wait_until(lambda: _read(lambda: db.session.get(EmailMessage, marker_id).status) == "sent")


def test_a_submitted_lead_is_emailed_to_each_matched_provider_address_and_the_patient(
    app, taxonomy, celery_worker, mail_sink
):
    _clinic("Aarhus Rehab (test)", ["intake@aarhus-rehab.dk", "chief@aarhus-rehab.dk"], language="da")
    _clinic("Odense Rehab (test)", ["leads@odense-rehab.dk"])
    db.session.commit()
    response = client_with_own_address(app).post("/quote", data=answers(app))
    assert response.status_code == 303
    lead = _read(lambda: db.session.scalar(sa.select(Lead)))
    wait_until(lambda: _lead_status(lead.id) == "routed", timeout=30)
    wait_until(lambda: len(mail_sink.messages()) == 4, timeout=30)
    _all_emails_sent()

    messages = {m["To"]: m for m in _received(mail_sink)}
    assert sorted(messages) == sorted(
        ["intake@aarhus-rehab.dk", "chief@aarhus-rehab.dk", "leads@odense-rehab.dk", "freja@example.org"]
    )
    config = current_app.config
    assignments = _read(
        lambda: {a.id: a.provider.notification_emails for a in db.session.scalars(sa.select(Assignment))}
    )
    for address in ("intake@aarhus-rehab.dk", "chief@aarhus-rehab.dk", "leads@odense-rehab.dk"):
        message = messages[address]
        assert message["From"] == config["MAIL_FROM"]
        assert message["Reply-To"] == config["COORDINATOR_EMAIL"]
        stored = _read(lambda a=address: db.session.scalar(sa.select(EmailMessage).filter_by(to_address=a)))
        assert message["Message-ID"] == stored.message_id
        assert message["Subject"].endswith(lead.reference)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for private in (
            "Freja",
            "Ørsted",
            "freja@example.org",
            "+45 20 12 34 56",
            "+4520123456",
            "Injured at C6",
            "walking with a frame",
        ):
            assert private not in text and private not in html
        link = next(word for word in text.split() if "/p/" in word)
        token = link.rsplit("/p/", 1)[1]
        assignment_id = read_assignment_token(token, max_age_seconds=3600)
        assert address in assignments[assignment_id]
        # The link opens the provider's page with the full request behind it.
        page = app.test_client().get(f"/p/{token}")
        assert page.status_code == 200 and "Freja" in page.get_data(as_text=True)
    assert "Ny tilbudsforespørgsel" in messages["intake@aarhus-rehab.dk"]["Subject"]
    assert "New quote request" in messages["leads@odense-rehab.dk"]["Subject"]


def test_route_lead_delivered_twice_makes_no_extra_assignments_or_emails(
    app, taxonomy, celery_worker, mail_sink
):
    for index in range(3):
        _clinic(f"Clinic {index} (test)", [f"clinic{index}@rehab.dk"])
    lead = LeadFactory()
    outbox.add_task(outbox.ROUTE_LEAD, lead_id=lead.id)
    db.session.commit()
    celery_app = current_app.extensions["celery"]
    celery_app.send_task(outbox.ROUTE_LEAD, kwargs={"lead_id": lead.id})
    celery_app.send_task(outbox.ROUTE_LEAD, kwargs={"lead_id": lead.id})
    wait_until(lambda: _lead_status(lead.id) == "routed", timeout=30)
    _drain(app)
    _all_emails_sent()
    assert _read(lambda: db.session.scalar(sa.select(sa.func.count(Assignment.id)))) == 3
    assert _read(lambda: db.session.scalar(sa.select(sa.func.count(EmailMessage.id)))) == 4
    recipients = sorted(m["To"] for m in _received(mail_sink))
    assert recipients == ["clinic0@rehab.dk", "clinic1@rehab.dk", "clinic2@rehab.dk", "marker@example.org"]
    statuses = _read(
        lambda: db.session.scalars(sa.select(LeadEvent.to_status).filter_by(kind="status_changed")).all()
    )
    assert statuses == ["routed"]


def test_a_provider_address_answering_451_gets_its_email_later(app, taxonomy, celery_worker, mail_sink):
    _clinic("Busy Clinic (test)", ["busy@busy-clinic.dk"])
    mail_sink.refuse["busy@busy-clinic.dk"] = "451 4.3.0 Mailbox busy, try again later"
    lead = LeadFactory()
    outbox.add_task(outbox.ROUTE_LEAD, lead_id=lead.id)
    db.session.commit()

    def first_attempt_failed():
        email = db.session.scalar(sa.select(EmailMessage).filter_by(to_address="busy@busy-clinic.dk"))
        result = email is not None and email.attempts == 1 and email.status == "queued"
        db.session.rollback()
        return result

    wait_until(first_attempt_failed, timeout=30)
    email = _read(
        lambda: db.session.scalar(sa.select(EmailMessage).filter_by(to_address="busy@busy-clinic.dk"))
    )
    assert "451" in email.last_error and email.next_attempt_at > email.created_at
    # The server recovers; beat's due-email sweep (run here by hand) hands the retry to the worker.
    mail_sink.refuse.clear()
    db.session.execute(
        sa.update(EmailMessage).where(EmailMessage.id == email.id).values(next_attempt_at=utcnow())
    )
    db.session.commit()
    current_app.extensions["celery"].send_task("workers.dispatch_due_emails")
    wait_until(lambda: _read(lambda: db.session.get(EmailMessage, email.id).status) == "sent", timeout=30)
    assert [m["To"] for m in _received(mail_sink)] == ["busy@busy-clinic.dk"]
    assert _read(lambda: db.session.get(EmailMessage, email.id).attempts) == 2


def test_a_provider_address_answering_550_leaves_the_email_failed_and_the_lead_rerouted(
    app, taxonomy, celery_worker, mail_sink
):
    """The only clinic's only address is dead: its assignment expires at once and, no other
    clinic being left, the lead tops the coordinators' queue as unroutable."""
    _clinic("Gone Clinic (test)", ["gone@gone-clinic.dk"])
    mail_sink.refuse["gone@gone-clinic.dk"] = "550 5.1.1 No such mailbox"
    lead = LeadFactory()
    outbox.add_task(outbox.ROUTE_LEAD, lead_id=lead.id)
    db.session.commit()

    def failed():
        return (
            _read(
                lambda: db.session.scalar(
                    sa.select(EmailMessage.status).filter_by(to_address="gone@gone-clinic.dk")
                )
            )
            == "failed"
        )

    wait_until(failed, timeout=30)
    email = _read(
        lambda: db.session.scalar(sa.select(EmailMessage).filter_by(to_address="gone@gone-clinic.dk"))
    )
    assert "550 5.1.1 No such mailbox" in email.last_error and email.attempts == 1
    event = _read(
        lambda: db.session.scalar(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="email_failed"))
    )
    assert "550" in event.note
    wait_until(lambda: _lead_status(lead.id) == "unroutable", timeout=30)
    assert mail_sink.messages() == []


@pytest.fixture
def second_worker(celery_worker, test_env, redis_server, tmp_path):
    """Another worker process on the same queue and database, for this test only."""
    worker = Worker(
        {**test_env, "REDIS_URL": redis_server.url_for(WORKER_REDIS_DB)}, tmp_path / "worker2.log"
    )
    worker.start()
    yield worker
    worker.stop()


@pytest.mark.pg
def test_two_workers_routing_200_leads_at_once_never_exceed_any_capacity(
    app, taxonomy, celery_worker, second_worker, mail_sink
):
    capacities = {
        "Tight A (test)": 1,
        "Tight B (test)": 2,
        "Tight C (test)": 3,
        "Tight D (test)": 4,
        "Tight E (test)": 5,
    }
    for name, capacity in capacities.items():
        _clinic(name, [f"{name.split()[1].lower()}@tight.dk"], capacity=capacity)
    leads = [LeadFactory() for _ in range(200)]
    for lead in leads:
        outbox.add_task(outbox.ROUTE_LEAD, lead_id=lead.id)
    db.session.commit()

    def none_left_new():
        return (
            _read(lambda: db.session.scalar(sa.select(sa.func.count(Lead.id)).filter_by(status="new"))) == 0
        )

    wait_until(none_left_new, timeout=180)
    counts = _read(
        lambda: dict(
            db.session.execute(
                sa.select(Provider.name, sa.func.count(Assignment.id))
                .join(Assignment, Assignment.provider_id == Provider.id)
                .group_by(Provider.name)
            ).all()
        )
    )
    assert counts == capacities
    statuses = _read(
        lambda: dict(
            db.session.execute(sa.select(Lead.status, sa.func.count(Lead.id)).group_by(Lead.status)).all()
        )
    )
    assert statuses["routed"] + statuses["unroutable"] == 200 and statuses["routed"] >= 5
    reasons = _read(
        lambda: set(db.session.scalars(sa.select(Lead.status_reason).filter_by(status="unroutable")))
    )
    assert reasons == {'{"what":"no_provider","ruled_out":[["capacity_used",5]]}'}
    # Both processes took part.
    assert "workers.route_lead" in second_worker.log_path.read_text(errors="replace")
    _all_emails_sent(timeout=60)
    assert len(mail_sink.messages()) == sum(capacities.values())

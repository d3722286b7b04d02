"""The proof: after erasure (and after retention), a canary planted in every field the patient
filled in is found nowhere in the database or in Redis, while the statistics still count the
leads."""

from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa
import time_machine

from leads.dev import seed
from leads.extensions import db
from leads.messaging.email import deliver_email
from leads.models import Assignment, EmailMessage, EmailStatus, ErasureRecord, Lead
from leads.patients import privacy
from leads.patients.self_service import request_erasure
from leads.routing.responses import accept, decline
from leads.routing.service import route_lead
from leads.staff import lead_actions, stats
from leads.timeutil import utcnow
from tests.factories import UserFactory
from tests.quote_support import answers, client_with_own_address

# SQL functions, guarded updates and row locks: run again on PostgreSQL.
pytestmark = pytest.mark.pg

CANARY = "zqxcanary"
PATIENT = {
    "full_name": f"Ada {CANARY.title()}",
    "email": f"ada.{CANARY}@example.org",
    "phone": "+45 20 98 76 54",
    "details": f"My neurologist said {CANARY} twice.",
}
PHONE_CANARY = "+4520987654"


def _submit(app, **extra):
    client = client_with_own_address(app)
    response = client.post("/quote", data=answers(app, **PATIENT, **extra))
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def _patient_with_two_answered_leads(app):
    seed.load_demo_providers()
    db.session.commit()
    _submit(app)
    db.session.execute(sa.update(Lead).values(created_at=utcnow().replace(year=utcnow().year - 1)))
    db.session.commit()
    _submit(app, treatment="ahsct-multiple-sclerosis", condition="multiple-sclerosis-relapsing")
    leads = db.session.scalars(sa.select(Lead).order_by(Lead.id)).all()
    assert len(leads) == 2
    coordinator = UserFactory()
    db.session.commit()
    for lead in leads:
        assert route_lead(lead.id) == "routed"
        lead_actions.add_note(lead.id, coordinator.id, f"Called {PATIENT['full_name']} about {CANARY}.")
        db.session.commit()
    first, second = (
        db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)).first()
        for lead in leads
    )
    _deliver_every_email()  # the clinics answer from the link their notification brought
    accept(first.id, note=f"Will call {PATIENT['full_name']} about {CANARY}")
    decline(second.id, reason="other", note=f"{CANARY} is not for us")
    _deliver_every_email()
    return leads


def _deliver_every_email() -> None:
    for email_id in db.session.scalars(sa.select(EmailMessage.id)).all():
        deliver_email(email_id)


def _database_hits() -> list[str]:
    """Every row of every table, read as text."""
    hits = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(table.select()):
            text = " ".join(str(value) for value in row).lower()
            if CANARY in text or PHONE_CANARY in text.replace(" ", ""):
                hits.append(table.name)
    db.session.commit()
    return hits


def _redis_hits(redis_server) -> list[bytes]:
    hits = []
    for database in (0, 1):
        client = redis.Redis.from_url(redis_server.url_for(database))
        for key in client.scan_iter():
            kind = client.type(key)
            if kind == b"string":
                values = [client.get(key)]
            elif kind == b"list":
                values = client.lrange(key, 0, -1)
            elif kind == b"hash":
                values = list(client.hgetall(key).items())
            elif kind == b"set":
                values = list(client.smembers(key))
            elif kind == b"zset":
                values = client.zrange(key, 0, -1)
            else:
                values = []
            if CANARY.encode() in key or CANARY.encode() in repr(values).encode():
                hits.append(key)
    return hits


def _leads_counted() -> int:
    today = utcnow().date()
    return stats.collect(stats.Period.last_days(400, today), utcnow()).total


def test_erasing_a_patient_leaves_no_trace_of_them_but_keeps_the_statistics(
    app, taxonomy, redis_server, mail_sink
):
    leads = _patient_with_two_answered_leads(app)
    assert _database_hits(), "the canary must be planted before the erasure"
    notified = {
        e.to_address
        for e in db.session.scalars(sa.select(EmailMessage))
        if e.template.startswith("provider_")
    }

    record = privacy.erase_patient(PATIENT["email"].upper(), user_id=None, door=privacy.COMMAND_LINE)

    assert sorted(record.references) == sorted(lead.reference for lead in leads)
    assert _database_hits() == []
    assert _redis_hits(redis_server) == []
    assert _leads_counted() == 2
    notices = sa.select(EmailMessage).filter_by(template="notice_provider_erasure")
    # Rendered by the worker that sends them.
    assert {deliver_email(notice.id) for notice in db.session.scalars(notices)} == {"sent"}
    db.session.expire_all()
    notices = db.session.scalars(notices).all()
    assert {n.to_address for n in notices} == notified
    assert all(lead.reference in n.body_text for n in notices for lead in leads if lead.id == n.lead_id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ErasureRecord)) == 1


def test_an_erasure_carried_out_at_its_deadline_leaves_no_trace_of_the_patient(
    app, taxonomy, redis_server, mail_sink
):
    leads = _patient_with_two_answered_leads(app)
    request_erasure(leads[1].id)

    with time_machine.travel(utcnow() + timedelta(days=30, hours=1), tick=False):
        result = privacy.apply_retention()

    assert result.erasures == 1
    assert _database_hits() == []
    assert _redis_hits(redis_server) == []
    assert _leads_counted() == 2
    [record] = db.session.scalars(sa.select(ErasureRecord)).all()
    assert sorted(record.references) == sorted(lead.reference for lead in leads)


def test_retention_leaves_no_trace_of_closed_leads_once_their_time_is_up(
    app, taxonomy, redis_server, mail_sink
):
    leads = _patient_with_two_answered_leads(app)
    coordinator = UserFactory()
    db.session.commit()
    for lead in leads:
        lead_actions.change_status(lead.id, coordinator.id, "closed_lost", note=f"{CANARY} went elsewhere")
        db.session.commit()

    assert privacy.apply_retention().closed_leads == 0
    with time_machine.travel(utcnow().replace(year=utcnow().year + 3), tick=False):
        result = privacy.apply_retention()
        again = privacy.apply_retention()

    assert result.closed_leads == 2 and again.closed_leads == 0
    assert _database_hits() == []
    assert _redis_hits(redis_server) == []
    assert _leads_counted() == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(EmailMessage)) > 0
    assert all(
        e.message_id and e.status in (EmailStatus.SENT, EmailStatus.CANCELLED, EmailStatus.FAILED)
        for e in db.session.scalars(sa.select(EmailMessage))
    )


def test_retention_leaves_no_trace_of_requests_nobody_acted_on_once_their_time_is_up(
    app, taxonomy, redis_server, mail_sink
):
    leads = _patient_with_two_answered_leads(app)
    assert [lead.status for lead in leads] == ["contacted", "routed"]

    with time_machine.travel(utcnow().replace(year=utcnow().year + 3), tick=False):
        result = privacy.apply_retention()
        again = privacy.apply_retention()

    assert result.stalled_leads == 2 and again.stalled_leads == 0
    assert _database_hits() == []
    assert _redis_hits(redis_server) == []
    assert _leads_counted() == 2
    assert set(db.session.scalars(sa.select(Lead.status))) == {"closed_lost"}

"""A patient's erasure request that nobody has carried out by its due date is carried out by
retention's daily run, exactly as an admin's click would, unless the operator switched it off."""

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa
from markupsafe import escape

from leads.extensions import db
from leads.models import AccessLog, EmailMessage, ErasureRecord, Lead, LeadEvent, Role
from leads.notes import Note
from leads.patients import privacy
from leads.patients.self_service import request_erasure
from leads.staff import queue
from leads.staff.lead_actions import LEFT_BY_ERASURE_CHECKED_NOTE
from leads.timeutil import utcnow
from tests.helpers import at_once, lock_order, query_plan, statements_sent
from tests.integration.test_privacy import _lead, _routed_and_sent
from tests.staff_support import signed_in_client

# Row locks skipped, and SQL date arithmetic: run again on PostgreSQL.
pytestmark = pytest.mark.pg

DUE_DAYS = 28  # ERASURE_DUE_DAYS's default


def _run_in(days: float) -> privacy.RetentionResult:
    """Retention's daily run, `days` from now."""
    result = privacy.apply_retention(now=utcnow() + timedelta(days=days))
    db.session.expire_all()
    return result


def _due(**fields) -> Lead:
    """A lead whose patient asked for erasure more than ERASURE_DUE_DAYS ago, sent before that."""
    asked = utcnow() - timedelta(days=DUE_DAYS, minutes=1)
    return _lead(**{"erasure_requested_at": asked, "created_at": asked - timedelta(days=1), **fields})


def _history(lead: Lead) -> list[tuple[str, str, str | None]]:
    events = db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id).order_by(LeadEvent.id))
    return [(event.kind, event.actor_type, event.note) for event in events]


def test_a_due_erasure_is_carried_out_by_the_daily_run_as_an_admins_click_would(app, taxonomy):
    lead = _routed_and_sent()  # open, and clinics received it
    earlier = _lead(email=lead.email.upper(), status="closed_lost", created_at=utcnow() - timedelta(days=9))
    request_erasure(lead.id)

    assert _run_in(DUE_DAYS - 0.5).erasures == 0
    assert db.session.get(Lead, lead.id).anonymised_at is None

    assert _run_in(DUE_DAYS + 0.01).erasures == 1

    for erased in (lead, earlier):  # every request sent from the patient's address
        row = db.session.get(Lead, erased.id)
        assert (row.status, row.full_name, row.email, row.details) == ("closed_lost", "", "", "")
        assert _history(erased)[-1] == ("erased", "system", privacy.AT_DEADLINE_NOTE.english)
    notices = db.session.scalars(sa.select(EmailMessage).filter_by(template="notice_provider_erasure")).all()
    assert notices and {notice.lead_id for notice in notices} == {lead.id}
    [proof] = db.session.scalars(sa.select(ErasureRecord)).all()
    assert (proof.door, proof.user_id) == (privacy.DEADLINE, None)
    assert proof.references == [earlier.reference, lead.reference]
    logged = db.session.execute(sa.select(AccessLog.user_id, AccessLog.action, AccessLog.detail)).all()
    assert logged == [(None, "erasure", privacy.AT_DEADLINE_DETAIL)] * 2

    assert _run_in(DUE_DAYS + 1).erasures == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ErasureRecord)) == 1


def test_staff_see_that_the_system_erased_it_at_the_deadline(app, taxonomy):
    lead = _lead(full_name="Ingrid Canaryson")
    request_erasure(lead.id)
    client, _ = signed_in_client(app, Role.ADMIN)
    waiting = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "If nobody has by then, the next daily retention run carries it out." in waiting

    _run_in(DUE_DAYS + 0.01)

    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "personal data was erased" in page and escape(privacy.AT_DEADLINE_NOTE.english) in page
    assert "Ingrid Canaryson" not in page
    log_page = client.get(f"/staff/admin/access-log?lead={lead.reference}").get_data(as_text=True)
    rows = log_page.split("<tbody>", 1)[1].split("<tr>")
    [row] = [row for row in rows if "Erased the patient" in row]
    assert "<td>System</td>" in row and "<td>Automatically, at the erasure deadline</td>" in row
    assert "Command line" not in row


def test_switched_off_a_due_erasure_is_left_to_an_admin(app, taxonomy):
    app.config["ERASURE_AUTOMATIC_WHEN_DUE"] = False
    lead = _due(status="routed")
    client, _ = signed_in_client(app, Role.ADMIN)

    assert _run_in(365).erasures == 0

    assert db.session.get(Lead, lead.id).anonymised_at is None
    assert db.session.scalars(sa.select(ErasureRecord)).all() == []
    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "Overdue" in page and "the next daily retention run carries it out" not in page


def test_one_due_erasure_that_fails_does_not_stop_the_others_and_the_next_run_retries(
    app, taxonomy, monkeypatch, caplog
):
    broken, fine = _due(full_name="Astrid Brokenfield"), _due(full_name="Bo Finegaard")
    anonymise = privacy.anonymise

    def fails_for_the_first(lead):
        if lead.id == broken.id:
            raise RuntimeError(f"cannot anonymise {lead.full_name} <{lead.email}>")
        anonymise(lead)

    monkeypatch.setattr(privacy, "anonymise", fails_for_the_first)
    with caplog.at_level(logging.INFO, logger="leads"):
        assert _run_in(0).erasures == 1

    assert db.session.get(Lead, fine.id).anonymised_at is not None
    kept = db.session.get(Lead, broken.id)
    assert (kept.full_name, kept.status, kept.anonymised_at) == ("Astrid Brokenfield", "new", None)
    assert "erased" not in [kind for kind, _, _ in _history(broken)]  # nothing of it was kept
    assert db.session.scalars(sa.select(ErasureRecord.references)).all() == [[fine.reference]]
    failure = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failure == [f"lead {broken.id}: its due erasure failed (RuntimeError); the next run tries again"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "Brokenfield" not in logged and broken.email not in logged and "Finegaard" not in logged

    monkeypatch.setattr(privacy, "anonymise", anonymise)
    assert _run_in(0).erasures == 1
    assert db.session.get(Lead, broken.id).anonymised_at is not None


def test_two_due_requests_of_one_patient_are_one_erasure(app, taxonomy):
    """The second request's data went with the first's erasure: it is simply done."""
    first = _due(email="mia@example.org")
    second = _due(email="Mia@example.org")

    assert _run_in(0).erasures == 1

    [proof] = db.session.scalars(sa.select(ErasureRecord)).all()
    assert proof.references == [first.reference, second.reference]
    for lead in (first, second):
        assert [kind for kind, _, _ in _history(lead)].count("erased") == 1


def test_a_due_erasure_takes_the_requests_from_the_address_in_any_case_letters_beyond_a_to_z_too(
    app, taxonomy
):
    """By the stored keys (`email_key`): SQLite's lower() leaves Ø and ø two letters."""
    first = _due(email="ørsted@example.org")
    second = _lead(email="ØRSTED@example.org", status="closed_lost", created_at=utcnow() - timedelta(days=40))

    assert _run_in(0).erasures == 1

    [proof] = db.session.scalars(sa.select(ErasureRecord)).all()
    assert proof.references == [second.reference, first.reference]


def test_a_due_erasure_erases_no_request_of_another_address_linked_by_a_phone_number(app, taxonomy):
    """Anyone can send the form with another person's phone number, which marks their request a
    repeat of that person's, then ask for erasure from their own link: nobody checks the erasure
    at its deadline, so it erases only the requests sent from the asking request's address. An
    admin erasing by hand sees the linked ones named and decides."""
    someone = _lead(email="someone@example.org", phone="+4520123456", status="contacted")
    asking = _due(email="asking@example.org", phone="+4520123456", status="duplicate", duplicate_of=someone)
    also_theirs = _lead(
        email="ASKING@example.org", phone="+4520999999", created_at=utcnow() - timedelta(days=40)
    )
    assert someone in privacy.patient_leads(asking.reference)  # what an admin is shown

    assert _run_in(0).erasures == 1

    for erased in (asking, also_theirs):
        assert db.session.get(Lead, erased.id).anonymised_at is not None
    kept = db.session.get(Lead, someone.id)
    assert (kept.anonymised_at, kept.email, kept.status) == (None, "someone@example.org", "contacted")
    # Its history says what happened beside it, and the coordinators are told to judge it.
    assert _history(someone)[-1] == (
        "note",
        "system",
        Note("left_at_deadline", reference=asking.reference).english,
    )
    [told] = db.session.scalars(
        sa.select(EmailMessage).filter_by(template="coordinator_patient_request", lead_id=someone.id)
    ).all()
    assert f"The data of {asking.reference} was erased at its erasure deadline." in told.body_text
    assert someone.reference in told.subject and "someone@example.org" not in told.body_text
    [proof] = db.session.scalars(sa.select(ErasureRecord)).all()
    assert sorted(proof.references) == sorted([asking.reference, also_theirs.reference])


def test_a_request_sent_after_the_erasure_was_asked_for_is_left_to_an_admin(app, taxonomy):
    """The patient asked us for something again: nobody checks this erasure, so it leaves the new
    request (quoted, chosen or booked, perhaps) and notes why in its history."""
    asking = _due(email="mia@example.org")
    later = _lead(email="MIA@example.org", status="quoted", created_at=utcnow() - timedelta(days=3))

    assert _run_in(0).erasures == 1

    assert db.session.get(Lead, asking.id).anonymised_at is not None
    kept = db.session.get(Lead, later.id)
    assert (kept.anonymised_at, kept.status) == (None, "quoted")
    assert _history(later)[-1][:2] == ("note", "system")


def test_a_due_erasure_begins_after_the_runs_time_at_the_next_run(app, taxonomy, monkeypatch):
    leads = [_due() for _ in range(3)]
    clock = iter([0, 1, 2, 200])  # the start, then one reading before each erasure
    monkeypatch.setattr(privacy.time, "monotonic", lambda: next(clock, 1000))

    assert _run_in(0).erasures == 2

    monkeypatch.setattr(privacy.time, "monotonic", lambda: 0)
    assert _run_in(0).erasures == 1
    assert all(db.session.get(Lead, lead.id).anonymised_at for lead in leads)


def test_the_retention_task_reports_the_erasures_carried_out(app, taxonomy):
    from workers import tasks

    _due()
    assert tasks.apply_retention()["erasures"] == 1


@pytest.mark.commits
def test_two_runs_at_once_carry_out_each_due_erasure_once(app, taxonomy):
    """Two beats, or a redelivered task: each patient is erased by one of them."""
    leads = [_due() for _ in range(6)]
    leads += [_due(email=leads[0].email)]  # a second request of the first patient

    results = at_once(app, lambda: privacy.apply_retention().erasures)

    assert sum(results) == 6
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ErasureRecord)) == 6
    erased = sa.select(sa.func.count()).select_from(LeadEvent).filter_by(kind="erased")
    assert db.session.scalar(erased) == 7


@pytest.mark.pg_only  # SQLite has one writer at a time: no row locks to skip
@pytest.mark.commits
def test_a_run_skips_a_patient_whose_request_another_transaction_holds_and_erases_it_next_time(app, taxonomy):
    held_lead, free = _due(), _due()
    # Not asked for, sent before: erased with it.
    held_lead_patients_other = _lead(email=held_lead.email, created_at=held_lead.created_at)
    with db.engine.connect() as other:
        other.execute(sa.select(Lead.id).where(Lead.id == held_lead_patients_other.id).with_for_update())

        assert privacy.apply_retention().erasures == 1  # did not wait for the held row

        other.rollback()
    db.session.expire_all()
    assert db.session.get(Lead, held_lead.id).anonymised_at is None
    assert db.session.get(Lead, free.id).anonymised_at is not None
    assert privacy.apply_retention().erasures == 1
    assert db.session.get(Lead, held_lead_patients_other.id).anonymised_at is not None


@pytest.mark.pg_only  # SQLite has one writer at a time: no row locks to order
def test_a_due_erasure_locks_each_lead_before_anything_of_it(app, taxonomy):
    lead = _routed_and_sent()
    request_erasure(lead.id)

    assert lock_order(lambda: _run_in(DUE_DAYS + 0.01))[0] == "lead"
    assert db.session.get(Lead, lead.id).anonymised_at is not None


def _left_listed(app) -> tuple[int, str]:
    """The queue's "left by an erasure" count and its filtered page, as a coordinator sees them."""
    coordinator, user = signed_in_client(app)
    page = coordinator.get("/staff/leads?left_by_erasure=y").get_data(as_text=True)
    return queue.attention_counts(user.id)["left_by_erasure"], page


def test_a_request_left_by_a_due_erasure_stays_on_the_list_until_a_coordinator_records_a_check(app, taxonomy):
    """Time passing judges nothing: the request stays listed through later runs until a person
    says it is not the erased patient's; their check is in its history."""
    someone = _lead(email="someone@example.org", phone="+4520123456", status="contacted")
    asking = _due(email="asking@example.org", phone="+4520123456", status="duplicate", duplicate_of=someone)
    assert _left_listed(app)[0] == 0

    assert _run_in(0).erasures == 1
    assert _run_in(DUE_DAYS * 3).erasures == 0  # later runs, months on

    count, page = _left_listed(app)
    assert count == 1 and someone.reference in page and asking.reference not in page
    assert "Left by an erasure: 1" in page
    coordinator, user = signed_in_client(app)
    lead_page = coordinator.get(f"/staff/leads/{someone.id}").get_data(as_text=True)
    assert "an erasure at its deadline erased a request linked to this one" in lead_page

    checked = coordinator.post(f"/staff/leads/{someone.id}/left-by-erasure-checked", follow_redirects=True)

    assert "Check recorded" in checked.get_data(as_text=True)
    db.session.expire_all()
    assert _history(someone)[-1] == ("left_by_erasure_checked", "staff", LEFT_BY_ERASURE_CHECKED_NOTE.english)
    assert db.session.scalars(
        sa.select(LeadEvent.actor_user_id).filter_by(lead_id=someone.id, kind="left_by_erasure_checked")
    ).all() == [user.id]
    count, page = _left_listed(app)
    assert count == 0 and someone.reference not in page
    again = coordinator.post(f"/staff/leads/{someone.id}/left-by-erasure-checked")
    assert again.status_code == 409
    assert "This request no longer waits for a check after an erasure." in again.get_data(as_text=True)


def test_a_request_left_by_a_due_erasure_leaves_the_list_when_an_admin_erases_it(app, taxonomy):
    someone = _lead(email="someone@example.org", phone="+4520123456", status="contacted")
    _due(email="asking@example.org", phone="+4520123456", status="duplicate", duplicate_of=someone)
    _run_in(0)
    assert _left_listed(app)[0] == 1

    privacy.erase_patient(someone.reference, user_id=None, door=privacy.COMMAND_LINE)

    assert _left_listed(app)[0] == 0


def test_the_left_by_erasure_filter_and_count_read_their_partial_index(app, taxonomy):
    someone = _lead(email="someone@example.org", phone="+4520123456", status="contacted")
    _due(email="asking@example.org", phone="+4520123456", status="duplicate", duplicate_of=someone)
    _run_in(0)
    with statements_sent("SELECT") as seen:
        assert queue.count_matching(queue.QueueFilters(left_by_erasure=True)) == 1
    [(statement, parameters)] = seen
    plan = query_plan(statement, parameters)
    assert "ix_lead_left_by_erasure" in plan, plan

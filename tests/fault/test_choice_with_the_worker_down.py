"""The patient chooses a clinic while no worker runs, and the worker that died left a reminder to
another clinic claimed mid-conversation, black box: once a worker is back the choice's emails go
out once, and the reminder the sweep takes back from the dead worker is cancelled at its claim
(that clinic's request ended), never sent."""

import contextlib
import os
import signal
from datetime import timedelta

import sqlalchemy as sa

from leads.extensions import db
from leads.messaging.tokens import make_assignment_token, make_patient_token
from leads.models import Assignment, EmailMessage, Lead, Quote
from leads.routing.notification import queue_provider_emails
from leads.timeutil import utcnow
from tests.fault.conftest import EMAILS_PER_LEAD
from tests.helpers import wait_until


def _in_stack(stack, work):
    """`work()` in the stack's app context, on the stack's database; its result."""
    with stack.app.app_context():
        try:
            return work()
        finally:
            db.session.remove()


def _waiting_assignments(stack, tag: str) -> list[tuple[int, list[str]]]:
    """The lead's assignments waiting for an answer, by rank: (id, the clinic's addresses)."""

    def read():
        rows = db.session.scalars(
            sa.select(Assignment)
            .join(Lead)
            .where(Lead.email.like(f"{tag}-%"), Assignment.status == "notified")
            .order_by(Assignment.rank)
        ).all()
        return [(a.id, list(a.provider.notification_emails)) for a in rows]

    return _in_stack(stack, read)


def _remind(stack, assignment_id: int) -> None:
    """What the escalation sweep does a working day after the notification: the clinic's reminder."""

    def remind():
        assignment = db.session.get(Assignment, assignment_id)
        queue_provider_emails(assignment, "reminder", expires_at=utcnow() + timedelta(days=2))
        db.session.commit()

    _in_stack(stack, remind)


def _email(stack, template: str, to: str):
    return _in_stack(
        stack,
        lambda: db.session.execute(
            sa.select(EmailMessage.id, EmailMessage.status, EmailMessage.message_id).where(
                EmailMessage.template == template, EmailMessage.to_address == to
            )
        ).one(),
    )


def _quote_id(stack, assignment_id: int) -> int:
    return _in_stack(
        stack, lambda: db.session.scalar(sa.select(Quote.id).where(Quote.assignment_id == assignment_id))
    )


def test_a_choice_made_while_the_worker_is_down_cancels_the_reminder_a_dead_worker_left_claimed(healthy):
    stack = healthy
    tag = stack.new_tag("choice-worker-down")
    answers = stack.submit(tag, 1)
    stack.wait_until_routed(tag, 1)
    stack.wait_until_settled(tag, EMAILS_PER_LEAD)
    (chosen, [chosen_address]), (other, [other_address]) = _waiting_assignments(stack, tag)[:2]
    chosen_link = f"/p/{_in_stack(stack, lambda: make_assignment_token(chosen))}"
    assert stack.post(f"{chosen_link}/accept", {"note": ""}) == 303
    offer = {
        "price_from": "20000",
        "price_to": "25000",
        "currency": "EUR",
        "includes": ["treatment"],
        "earliest_start": (utcnow().date() + timedelta(days=30)).isoformat(),
        "valid_days": "30",
        "needs_records": "n",
        "message": "",
        "revision": "0",
    }
    assert stack.post(f"{chosen_link}/quote", offer) == 303

    # The other clinic's reminder goes to a mail server that takes its time; the worker dies whole
    # (its main process first: nothing is redelivered) in the middle of that conversation.
    stack.sink.delay[other_address] = 60
    _remind(stack, other)
    wait_until(lambda: _email(stack, "provider_reminder", other_address).status == "sending", timeout=30)
    pool = stack.worker.child_pids()
    os.kill(stack.worker.process.pid, signal.SIGKILL)
    stack.worker.process.wait()
    for child in pool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    stack.sink.delay.clear()

    patient_link = f"/my-request/{_in_stack(stack, lambda: make_patient_token(stack.leads(tag)[0].id))}"
    choice = f"{patient_link}/quotes/{_quote_id(stack, chosen)}/choose"
    assert stack.post(choice, {"revision": "1"}) == 303
    stack.worker.start()

    def settled():
        emails = stack.emails(tag)
        return all(email.status in ("sent", "failed", "cancelled") for email in emails) and emails

    emails = wait_until(settled, timeout=60, interval=0.5)
    reminder = _email(stack, "provider_reminder", other_address)
    told = _email(stack, "provider_quote_chosen", chosen_address)
    figures = stack.figures("patient's choice while the worker was down", tag, answers)
    delivered = stack.delivered()
    assert answers == {303: 1} and [lead.status for lead in stack.leads(tag)] == ["chosen"]
    assert reminder.status == "cancelled" and delivered[reminder.message_id] == 0
    assert told.status == "sent" and delivered[told.message_id] == 1
    assert all(delivered[email.message_id] == 1 for email in emails if email.status == "sent")
    assert figures["delivered twice"] == 0 and figures["duplicate assignments"] == 0

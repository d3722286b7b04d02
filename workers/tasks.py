"""Tasks are thin shells: they take ids, call one service, and let it commit."""

from dataclasses import asdict
from datetime import timedelta

import sqlalchemy as sa
from celery import shared_task
from flask import current_app

from leads.messaging import email, outbox
from leads.patients import privacy
from leads.routing import bounces, escalation
from leads.routing import service as routing
from leads.staff import operations, stats_summary
from leads.timeutil import utcnow
from workers import soft_time_limit_at

# As for routing: a database hiccup is retried; the claims keep an email from going out twice.
RETRY_ON_DATABASE_ERRORS = {
    "autoretry_for": (sa.exc.OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@shared_task(name=outbox.SEND_PROVIDER_EMAILS, **RETRY_ON_DATABASE_ERRORS)
def send_provider_emails(email_ids: list[int]) -> dict[int, str]:
    return _send(email_ids)


@shared_task(name=outbox.SEND_EMAILS, **RETRY_ON_DATABASE_ERRORS)
def send_emails(email_ids: list[int]) -> dict[int, str]:
    return _send(email_ids)


@shared_task(name=outbox.SEND_EMAIL, **RETRY_ON_DATABASE_ERRORS)
def send_email(email_id: int) -> str:
    return _send([email_id])[email_id]


def _send(email_ids: list[int]) -> dict[int, str]:
    # No email is claimed whose claim could outlast the task: the interruption finds none in flight.
    return bounces.deliver_and_handle_bounces(email_ids, soft_time_limit_at())


@shared_task(name=outbox.SWEEP_OUTBOX)
def sweep_outbox() -> int:
    operations.record_beat_run()  # beat sends this task every OUTBOX_SWEEP_SECONDS
    return outbox.publish_stale()


@shared_task(name=outbox.DISPATCH_DUE_EMAILS)
def dispatch_due_emails() -> int:
    sent = 0
    for task_name, email_ids in email.due_email_batches():
        email.publish_send(task_name, email_ids)
        sent += len(email_ids)
    bounces.handle_bounces_left()  # after the sends: a bounce that cannot be handled holds up none
    return sent


# A database hiccup (SQLite busy, PostgreSQL deadlock or restart) is retried; the lead stays `new`
# meanwhile, and route_waiting_leads picks it up if the retries run out.
@shared_task(
    name=outbox.ROUTE_LEAD,
    bind=True,
    autoretry_for=(sa.exc.OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def route_lead(self, lead_id: int, email_ids: list[int] | None = None) -> str:
    """Route the lead; `email_ids`: the emails the intake queued with it (the patient's
    confirmation), handed to the email queue first, so the form publishes one message."""
    if email_ids and not self.request.retries:
        email.hand_over(email_ids)
    return routing.route_lead(lead_id)


@shared_task(name=outbox.ROUTE_WAITING_LEADS)
def route_waiting_leads() -> int:
    return routing.route_waiting_leads(timedelta(seconds=current_app.config["ROUTING_RETRY_AFTER_SECONDS"]))


@shared_task(name=outbox.ESCALATE_ASSIGNMENTS)
def escalate_assignments() -> dict:
    result = escalation.escalate_assignments()
    quotes = result.quotes
    return {
        "reminded": result.reminded,
        "expired": result.expired,
        "quotes_expired": quotes.expired,
        "clinics_reminded_to_quote": quotes.clinics_reminded,
        "patients_reminded_of_quotes": quotes.patients_reminded,
    }


@shared_task(name=outbox.APPLY_RETENTION)
def apply_retention() -> dict:
    return asdict(privacy.apply_retention())


@shared_task(name=outbox.REFRESH_STATS_SUMMARIES)
def refresh_stats_summaries() -> dict:
    result = stats_summary.refresh(utcnow().date(), current_app.config["STATS_MAX_DAYS"])
    return {"changed": result.changed, "filled": result.filled, "written": result.written}

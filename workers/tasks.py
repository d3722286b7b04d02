"""Tasks are thin shells: they take ids, call one service, and let it commit."""

from celery import shared_task

from leads import email, outbox


@shared_task(name=outbox.SEND_EMAIL)
def send_email(email_id: int) -> str:
    return email.deliver_email(email_id)


@shared_task(name="workers.sweep_outbox")
def sweep_outbox() -> int:
    return outbox.publish_stale()


@shared_task(name="workers.dispatch_due_emails")
def dispatch_due_emails() -> int:
    due = email.due_email_ids()
    for email_id in due:
        send_email.delay(email_id)
    return len(due)

"""Faults of the mail server, black box: every email is delivered or failed with the server's
answer, and a duplicate only ever carries the same Message-ID."""

from tests.fault.conftest import CLINICS, EMAILS_PER_LEAD, PROVIDERS, SETTINGS, pause
from tests.helpers import wait_until

TRY_AGAIN = "451 4.3.0 Try again later"
NO_SUCH_USER = "550 5.1.1 No such user here"


def test_smtp_451_for_a_while_then_every_email_once(healthy):
    stack = healthy
    tag = stack.new_tag("smtp-451")
    stack.sink.answer_all = TRY_AGAIN
    answers = stack.submit(tag, 20)
    stack.wait_until_routed(tag, 20)
    wait_until(lambda: sum(email.attempts for email in stack.emails(tag)) >= 20 * EMAILS_PER_LEAD, timeout=60)
    pause(5.0)  # the outage goes on: back-off, no email lost or given up
    stack.sink.answer_all = None

    emails = stack.wait_until_settled(tag, 20 * EMAILS_PER_LEAD)
    figures = stack.figures("SMTP 451 for every message for a while", tag, answers)
    assert figures["sent"] == figures["delivered"] == 20 * EMAILS_PER_LEAD
    assert figures["delivered twice"] == 0
    assert all(email.attempts >= 2 for email in emails)  # each refusal was counted


def test_smtp_550_for_every_address_of_one_provider_reroutes_and_pauses_it(healthy):
    """That clinic's emails fail after one attempt with the server's answer; each lead it was
    given goes to the next clinic at once, and once PROVIDER_BOUNCES_BEFORE_PAUSE leads bounced the
    clinic is paused and the coordinators told. Every other email is delivered once."""
    stack = healthy
    tag = stack.new_tag("smtp-550")
    dead_clinic, dead = f"Fault Clinic {PROVIDERS}", f"clinic{PROVIDERS}@fault.example"
    stack.sink.refuse[dead] = NO_SUCH_USER
    answers = stack.submit(tag, 20)
    stack.wait_until_routed(tag, 20)

    def settled():
        emails = stack.emails(tag)
        open_ = stack.open_assignments(tag)
        done = all(email.status in ("sent", "failed") for email in emails)
        return done and len(open_) == 20 and set(open_.values()) == {3} and emails

    try:
        emails = wait_until(settled, timeout=90, interval=0.5)
        figures = stack.figures("SMTP 550 for every address of one provider", tag, answers)
        paused = not stack.provider(dead_clinic).active
    finally:
        stack.reactivate(dead_clinic)
    failed = [email for email in emails if email.status == "failed"]
    # How many leads reach the clinic depends on timing: its bounces count against it in ranking.
    assert failed and all(email.to_address == dead for email in failed)
    assert all(email.attempts == 1 and NO_SUCH_USER in email.last_error for email in failed)
    events = stack.events(tag, "email_failed")
    assert len(events) == len(failed) and all(NO_SUCH_USER in event.note for event in events)
    assert len(stack.events(tag, "assignment_expired")) == len(failed)
    bounces_before_pause = int(SETTINGS["PROVIDER_BOUNCES_BEFORE_PAUSE"])
    assert paused == (len(failed) >= bounces_before_pause)
    assert len(stack.events(tag, "provider_paused")) == (1 if paused else 0)
    assert figures["sent"] == len(emails) - len(failed) == figures["delivered"]
    assert figures["delivered twice"] == 0 and figures["duplicate assignments"] == 0


def test_connection_dropped_before_the_250_duplicates_with_the_same_message_id(healthy):
    """SMTP cannot tell a lost answer from a lost message: the email goes again, and the copy
    carries the same Message-ID, so mail clients show it once."""
    stack = healthy
    tag = stack.new_tag("smtp-dropped")
    stack.sink.drop_before_answer = True
    answers = stack.submit(tag, 5)
    stack.wait_until_routed(tag, 5)
    wait_until(lambda: all(email.attempts >= 1 for email in stack.emails(tag)), timeout=60)
    stack.sink.drop_before_answer = False

    emails = stack.wait_until_settled(tag, 5 * EMAILS_PER_LEAD)
    figures = stack.figures("SMTP connection dropped after the message, before the 250", tag, answers)
    delivered = stack.delivered()
    assert figures["sent"] == 5 * EMAILS_PER_LEAD
    # Every copy the server kept is of a row we know; the ones sent twice were tried twice.
    assert all(delivered[email.message_id] >= 1 for email in emails)
    assert all(delivered[email.message_id] <= email.attempts for email in emails)
    assert figures["delivered twice"] >= 1


def test_the_mail_server_gone_mid_batch_then_back_delivers_every_email(healthy):
    """The mail server stops while batches go out (each sender's open connection cut, new ones
    refused), then a new one starts on the same port: every email is delivered, a copy only where
    a conversation was cut between the server keeping the message and its 250 (one per sender)."""
    stack = healthy
    tag = stack.new_tag("smtp-gone")
    for address in CLINICS:
        stack.sink.delay[address] = 0.2
    answers = stack.submit(tag, 10)
    wait_until(lambda: sum(email.status == "sent" for email in stack.emails(tag)) >= 8)
    stack.stop_smtp()
    wait_until(lambda: sum(email.attempts > 1 for email in stack.emails(tag)) >= 2, timeout=30)
    stack.start_smtp()

    emails = stack.wait_until_settled(tag, 10 * EMAILS_PER_LEAD, timeout=60)
    figures = stack.figures("SMTP server gone mid-batch, then back", tag, answers)
    delivered = stack.delivered()
    assert answers == {303: 10} and figures["routed"] == 10 and figures["duplicate assignments"] == 0
    assert figures["sent"] == 10 * EMAILS_PER_LEAD and all(delivered[email.message_id] for email in emails)
    assert figures["delivered twice"] <= 2  # concurrency 2: at most one conversation cut per sender
    assert all(delivered[email.message_id] <= email.attempts for email in emails)

"""The emails one transaction queues go out in one task, over one SMTP connection: each is still
claimed once, a refused address holds up none of the others, and a worker dying mid-batch leaves
at most the email in the server's hands unrecorded."""

import base64
import json
import logging
import threading
from datetime import timedelta
from email import message_from_bytes, policy

import jinja2
import pytest
import redis
import sqlalchemy as sa
from celery import Celery

from leads.dev import seed
from leads.extensions import commits_a_power_loss_may_undo, db
from leads.messaging import email as email_module
from leads.messaging import outbox
from leads.messaging.email import deliver_emails, due_email_batches, hard_bounced, queue_email
from leads.models import Consent, EmailMessage, LeadEvent, OutboxMessage
from leads.routing.bounces import deliver_and_handle_bounces
from leads.routing.service import route_lead
from leads.timeutil import utcnow
from tests.factories import EmailMessageFactory, LeadFactory
from tests.helpers import at_once, sqlite_statements, wait_until
from tests.servers import Worker
from workers import celery_settings

# The claims and outcomes are separate transactions, and a second worker needs its own connection.
pytestmark = [pytest.mark.commits, pytest.mark.pg]


def _queue_batch(*addresses: str) -> list[int]:
    """Emails queued in one transaction, as routing queues a lead's provider emails."""
    ids = [
        queue_email(template="test_message", to=address, idempotency_key=f"k:{address}", sent_at=utcnow())
        for address in addresses
    ]
    db.session.commit()
    return ids


def _statuses(ids: list[int]) -> list[tuple[str, int]]:
    db.session.expire_all()
    return [(db.session.get(EmailMessage, i).status, db.session.get(EmailMessage, i).attempts) for i in ids]


def _received(mail_sink) -> list[str]:
    """The addressees of the messages the server kept, in order of address."""
    return sorted(
        str(message_from_bytes(path.read_bytes(), policy=policy.default)["To"])
        for path in mail_sink.messages()
    )


def test_the_emails_of_one_transaction_travel_in_one_send_task(app):
    ids = _queue_batch("a@example.org", "b@example.org", "c@example.org")
    tasks = db.session.scalars(sa.select(OutboxMessage).filter(OutboxMessage.task_name.like("%send%"))).all()
    assert [(t.task_name, t.payload) for t in tasks] == [(outbox.SEND_EMAILS, {"email_ids": ids})]


def test_routing_sends_a_leads_provider_emails_in_one_task_ahead_of_the_rest(app, taxonomy, redis_server):
    seed.load_demo_providers()
    treatment_lead = LeadFactory()
    db.session.add(Consent(lead=treatment_lead, text_version="v1", share_with_providers=True, contact=True,
                           source_form="t"))  # fmt: skip
    db.session.commit()
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    assert route_lead(treatment_lead.id) == "routed"
    provider_emails = db.session.scalars(
        sa.select(EmailMessage.id)
        .where(EmailMessage.template.startswith("provider_"))
        .order_by(EmailMessage.id)
    ).all()
    assert len(provider_emails) >= 2
    tasks = db.session.scalars(
        sa.select(OutboxMessage).filter_by(task_name=outbox.SEND_PROVIDER_EMAILS)
    ).all()
    assert [t.payload for t in tasks] == [{"email_ids": list(provider_emails)}]
    # Published at priority 0: the list a worker asks for before any lower priority's.
    published = [json.loads(raw)["headers"]["task"] for raw in client.lrange(outbox.EMAIL_QUEUE, 0, -1)]
    assert published == [outbox.SEND_PROVIDER_EMAILS]


def test_a_patients_confirmation_waits_in_the_lower_priority_list(app, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    _queue_batch("patient@example.org")
    assert client.llen(outbox.EMAIL_QUEUE) == 0
    later = [key for key in client.keys(f"{outbox.EMAIL_QUEUE}*") if key != outbox.EMAIL_QUEUE.encode()]
    assert len(later) == 1 and later[0].endswith(str(outbox.LATER_PRIORITY).encode())
    [raw] = client.lrange(later[0], 0, -1)
    assert json.loads(raw)["headers"]["task"] == outbox.SEND_EMAILS


def _lead_with_its_confirmation() -> tuple[int, int]:
    """A lead ready to route and its confirmation, queued as the intake queues them: the email's
    id rides in the routing task, in no send task of its own."""
    seed.load_demo_providers()
    lead = LeadFactory()
    db.session.add(Consent(lead=lead, text_version="v1", share_with_providers=True, contact=True,
                           source_form="t"))  # fmt: skip
    db.session.flush()
    confirmation = queue_email(
        template="test_message", to="patient@example.org", idempotency_key="confirmation",
        lead_id=lead.id, sent_at=utcnow(), in_send_task=False,
    )  # fmt: skip
    lead_id = lead.id
    db.session.commit()  # and no read after it: the task runs in its own session, and SQLite locks
    return lead_id, confirmation


def test_the_routing_task_hands_the_intakes_confirmation_to_the_email_queue_before_it_routes(
    app, taxonomy, redis_server, monkeypatch
):
    from workers import tasks

    route_lead_task = app.extensions["celery"].tasks[outbox.ROUTE_LEAD]  # this app's, with its Redis
    lead_id, confirmation = _lead_with_its_confirmation()
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    db.session.rollback()
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    seen_when_routing_began = []
    real_route_lead = tasks.routing.route_lead

    def route_lead_watched(lead_id):
        later = client.keys(f"{outbox.EMAIL_QUEUE}*{outbox.LATER_PRIORITY}")
        seen_when_routing_began.extend(json.loads(raw) for key in later for raw in client.lrange(key, 0, -1))
        return real_route_lead(lead_id)

    monkeypatch.setattr(tasks.routing, "route_lead", route_lead_watched)
    assert route_lead_task.apply(kwargs={"lead_id": lead_id, "email_ids": [confirmation]}).get() == "routed"
    [message] = seen_when_routing_began  # at the lower priority, as the confirmation always travelled
    assert message["headers"]["task"] == outbox.SEND_EMAILS
    assert json.loads(base64.b64decode(message["body"]))[1] == {"email_ids": [confirmation]}


def test_a_confirmation_the_routing_task_cannot_hand_over_is_sent_by_the_due_email_sweep(
    app, taxonomy, redis_server
):
    route_lead_task = app.extensions["celery"].tasks[outbox.ROUTE_LEAD]
    lead_id, confirmation = _lead_with_its_confirmation()
    redis_server.stop()
    try:
        # The broker refuses the hand-over: the lead is routed all the same.
        assert (
            route_lead_task.apply(kwargs={"lead_id": lead_id, "email_ids": [confirmation]}).get() == "routed"
        )
    finally:
        redis_server.start()
    email = db.session.get(EmailMessage, confirmation)
    assert email.status == "queued" and email.attempts == 0
    email.next_attempt_at = utcnow() - timedelta(seconds=1)  # past its safety net
    db.session.commit()
    assert (outbox.SEND_EMAILS, [confirmation]) in due_email_batches()


def test_one_refused_address_holds_up_none_of_the_others_and_is_retried(app, mail_sink):
    mail_sink.refuse["busy@example.org"] = "451 4.3.0 Try again later"
    try:
        ids = _queue_batch("first@example.org", "busy@example.org", "third@example.org")
        statuses = deliver_emails(ids)
    finally:
        mail_sink.refuse.clear()
    assert [statuses[i] for i in ids] == ["sent", "queued", "sent"]
    assert _statuses(ids) == [("sent", 1), ("queued", 1), ("sent", 1)]
    assert _received(mail_sink) == ["first@example.org", "third@example.org"]

    busy = db.session.get(EmailMessage, ids[1])
    assert "451" in busy.last_error and busy.next_attempt_at > utcnow()
    busy.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert due_email_batches() == [(outbox.SEND_EMAILS, [ids[1]])]
    assert deliver_emails(ids) == {ids[0]: "skipped", ids[1]: "sent", ids[2]: "skipped"}
    assert _received(mail_sink) == ["busy@example.org", "first@example.org", "third@example.org"]


def test_a_permanently_refused_address_fails_alone(app, mail_sink):
    mail_sink.refuse["gone@example.org"] = "550 5.1.1 No such user"
    try:
        ids = _queue_batch("gone@example.org", "second@example.org")
        assert list(deliver_emails(ids).values()) == ["failed", "sent"]
    finally:
        mail_sink.refuse.clear()
    assert _statuses(ids) == [("failed", 1), ("sent", 1)]


def test_two_workers_given_the_same_batch_send_each_email_once(app, mail_sink):
    ids = _queue_batch(*(f"provider{n}@example.org" for n in range(6)))
    db.session.rollback()  # this test's session must not hold the SQLite write lock
    barrier = threading.Barrier(2)
    results: list[dict[int, str]] = []
    errors: list[BaseException] = []

    def worker(order: list[int]) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                results.append(deliver_emails(order))
                db.session.remove()
        except BaseException as exc:
            errors.append(exc)

    # One takes the batch from the front, the other from the back: they meet in the middle.
    threads = [threading.Thread(target=worker, args=(order,)) for order in (ids, ids[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    sent_by = [{i for i, status in result.items() if status == "sent"} for result in results]
    assert sent_by[0] | sent_by[1] == set(ids) and not sent_by[0] & sent_by[1]
    assert _statuses(ids) == [("sent", 1)] * 6
    assert len(mail_sink.messages()) == 6


def test_a_worker_dying_mid_batch_leaves_only_the_email_in_flight_unrecorded(app, mail_sink, monkeypatch):
    """The first email is recorded sent; the second was in the server's hands when the worker
    died (claimed, its attempt counted: the one that may go twice, as for a single email); the
    third was never claimed, so the task's redelivery sends it at once."""
    ids = _queue_batch("one@example.org", "two@example.org", "three@example.org")
    real_send = email_module.smtp_send

    def die_on_the_second(message, conversation=None):
        if message["To"] == "two@example.org":
            real_send(message, conversation)  # the server took it; the worker dies before hearing the 250
            raise SystemExit("worker killed mid-send")
        real_send(message, conversation)

    monkeypatch.setattr(email_module, "smtp_send", die_on_the_second)
    with pytest.raises(SystemExit):
        deliver_emails(ids)
    db.session.rollback()
    assert _statuses(ids) == [("sent", 1), ("sending", 1), ("queued", 0)]

    monkeypatch.setattr(email_module, "smtp_send", real_send)
    assert deliver_emails(ids) == {ids[0]: "skipped", ids[1]: "skipped", ids[2]: "sent"}
    assert _received(mail_sink) == ["one@example.org", "three@example.org", "two@example.org"]

    # Beat takes back the abandoned claim: the one email that may arrive twice, with the same Message-ID.
    app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] = 0
    try:
        assert due_email_batches() == [(outbox.SEND_EMAILS, [ids[1]])]
    finally:
        app.config["EMAIL_CLAIM_TIMEOUT_SECONDS"] = 180
    assert deliver_emails(ids)[ids[1]] == "sent"
    assert _statuses(ids) == [("sent", 1), ("sent", 2), ("sent", 1)]
    assert len(mail_sink.messages()) == 4


PRIORITY_REDIS_DB = 5  # this test's worker only


def test_a_providers_notification_overtakes_a_backlog_of_other_emails(app, test_env, redis_server, tmp_path):
    """Forty patients' emails wait in the queue when a lead's provider emails are published: the
    worker sends the provider emails next, not after the backlog."""
    url = redis_server.url_for(PRIORITY_REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    backlog = [EmailMessageFactory(template="patient_confirmation").id for _ in range(40)]
    providers = [EmailMessageFactory(template="provider_notification").id for _ in range(3)]
    db.session.commit()
    producer = Celery("priority-test")
    producer.config_from_object(celery_settings({**app.config, "REDIS_URL": url}))
    for email_id in backlog:
        producer.send_task(outbox.SEND_EMAILS, kwargs={"email_ids": [email_id]})
    producer.send_task(outbox.SEND_PROVIDER_EMAILS, kwargs={"email_ids": providers})
    producer.close()

    worker = Worker({**test_env, "REDIS_URL": url}, tmp_path / "worker.log")
    worker.start()
    try:
        wait_until(lambda: _sent_count(backlog + providers) == len(backlog + providers), timeout=120)
    finally:
        worker.stop()
    sent_at = dict(db.session.execute(sa.select(EmailMessage.id, EmailMessage.sent_at)).all())
    last_provider_email = max(sent_at[i] for i in providers)
    # At most the one task the worker took before it saw the provider batch goes first.
    assert sum(sent_at[i] < last_provider_email for i in backlog) <= 1


def _sent_count(ids: list[int]) -> int:
    count = db.session.scalar(
        sa.select(sa.func.count(EmailMessage.id)).where(
            EmailMessage.id.in_(ids), EmailMessage.status == "sent"
        )
    )
    db.session.rollback()  # end the read: an open SQLite transaction would block the worker
    return count


def _flushes_to_disk() -> bool:
    """Whether the transaction beginning now waits for the disk at its commit."""
    if db.engine.dialect.name == "sqlite":
        durable = db.session.execute(sa.text("PRAGMA synchronous")).scalar_one() == 2  # FULL, not NORMAL
    else:
        durable = db.session.execute(sa.text("SHOW synchronous_commit")).scalar_one() != "off"
    db.session.rollback()
    return durable


def test_only_an_emails_bookkeeping_skips_the_flush_to_disk(app):
    """A claim or an outcome a power loss undoes only sends the email again; every other commit
    (a lead, its routing) still reaches the disk before it returns."""
    assert _flushes_to_disk()
    with commits_a_power_loss_may_undo():
        assert not _flushes_to_disk()
    assert _flushes_to_disk()


def _queue_for_the_sender(*addresses: str) -> list[int]:
    """Emails queued with what renders them, as the form and routing queue theirs."""
    ids = [
        queue_email(
            template="notice_provider_withdrawn",
            to=address,
            idempotency_key=f"later:{address}",
            render_later=True,
            reference="Q-ABC234",
        )
        for address in addresses
    ]
    db.session.commit()
    return ids


@pytest.mark.sqlite_only
def test_each_email_of_a_batch_is_rendered_with_no_write_lock_held(app, mail_sink, monkeypatch):
    ids = _queue_for_the_sender("a@example.org", "b@example.org")
    real_render = email_module.render_email
    with sqlite_statements() as seen:

        def render(*args, **kwargs):
            seen.append("RENDER")
            return real_render(*args, **kwargs)

        monkeypatch.setattr(email_module, "render_email", render)
        assert deliver_emails(ids) == {ids[0]: "sent", ids[1]: "sent"}
    assert seen.count("RENDER") == 2
    writing = False
    for statement in seen:
        if statement == "RENDER":
            assert not writing
        elif statement == "BEGIN IMMEDIATE" or statement in ("COMMIT", "ROLLBACK"):
            writing = statement == "BEGIN IMMEDIATE"
    db.session.expire_all()
    assert all("Q-ABC234" in db.session.get(EmailMessage, i).body_text for i in ids)
    assert len(mail_sink.messages()) == 2


def test_words_rendered_ahead_are_used_only_while_the_row_holds_the_context_they_came_from(app):
    (email_id,) = _queue_for_the_sender("a@example.org")
    ahead = email_module._WordsAhead([email_id])
    ahead.render_next([email_id])
    assert set(ahead.rendered) == {email_id}
    email = db.session.get(EmailMessage, email_id)
    assert "Q-ABC234" in ahead.rendered[email_id][1].text
    other = {"template": "notice_provider_withdrawn", "language": "en", "context": {"reference": "Q-OTHER2"}}
    words = email_module.render_email("notice_provider_withdrawn", "en", reference="Q-OTHER2")
    stale = {email_id: (other, words)}
    email_module.render_pending(email, stale)  # the row's context differs: rendered again from it
    assert "Q-ABC234" in email.body_text and "Q-OTHER2" not in email.body_text
    assert email.render_context is None
    db.session.commit()
    erased = db.session.get(EmailMessage, _queue_for_the_sender("b@example.org")[0])
    ahead = email_module._WordsAhead([erased.id])
    ahead.render_next([erased.id])
    erased.render_context = None  # as erasure leaves it, between the rendering and the claim
    email_module.render_pending(erased, ahead.rendered)
    assert (erased.subject, erased.body_text) == ("", "")


def _gone_from_this_release(email_id: int) -> None:
    """The email waits to be rendered from a template a release renamed."""
    email = db.session.get(EmailMessage, email_id)
    email.render_context = {**email.render_context, "template": "notice_renamed_in_this_release"}
    db.session.commit()


def test_an_email_that_cannot_be_rendered_fails_alone_and_the_sweep_sends_the_rest(
    app, mail_sink, taxonomy, caplog
):
    """It fails at once with the reason in its lead's history (no retry can help), and the others
    due with it, behind it in the sweep's order, go out."""
    lead = LeadFactory(full_name="Canary Patient")
    db.session.commit()
    (broken,) = _queue_for_the_sender("canary@example.org")
    _gone_from_this_release(broken)
    others = _queue_batch("one@example.org", "two@example.org", "three@example.org")
    db.session.execute(sa.update(EmailMessage).where(EmailMessage.id == broken).values(lead_id=lead.id))
    now = utcnow()
    for email_id, due in [(broken, now - timedelta(minutes=10))] + [
        (i, now - timedelta(minutes=1)) for i in others
    ]:
        db.session.execute(
            sa.update(EmailMessage).where(EmailMessage.id == email_id).values(next_attempt_at=due)
        )
    db.session.commit()

    batches = due_email_batches()
    assert batches == [(outbox.SEND_EMAILS, [broken, *others])]
    with caplog.at_level(logging.INFO):
        statuses = deliver_and_handle_bounces(batches[0][1])
    assert statuses == {broken: "failed", **{i: "sent" for i in others}}
    assert _received(mail_sink) == ["one@example.org", "three@example.org", "two@example.org"]
    email = db.session.get(EmailMessage, broken)
    assert (email.status, email.attempts) == ("failed", 0)  # never offered to the server
    assert email.last_error.startswith("Not sent: it could not be made (TemplateNotFound")
    assert not hard_bounced(email)
    [event] = db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind="email_failed")).all()
    assert "could not be made" in event.note
    assert "canary" not in caplog.text.lower()
    assert due_email_batches() == []  # the next sweep finds nothing left behind


def test_a_message_that_cannot_be_built_fails_alone(app, mail_sink):
    ids = _queue_batch("first@example.org", "second@example.org")
    db.session.execute(
        sa.update(EmailMessage)
        .where(EmailMessage.id == ids[0])
        .values(reply_to="a@example.org\nBcc: x@example.org")
    )
    db.session.commit()
    assert deliver_emails(ids) == {ids[0]: "failed", ids[1]: "sent"}
    assert _statuses(ids) == [("failed", 0), ("sent", 1)]
    assert _received(mail_sink) == ["second@example.org"]


def test_two_tasks_given_the_same_batch_render_each_email_about_once(app, mail_sink, monkeypatch):
    """A sweep that publishes a batch again while the first task works through it: the second
    task renders at most one email it then finds taken, not the whole batch."""
    ids = _queue_for_the_sender(*(f"provider{n}@example.org" for n in range(6)))
    real_render = email_module.render_email
    renders = []

    def render(*args, **kwargs):
        renders.append(1)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(email_module, "render_email", render)
    results = at_once(app, lambda: deliver_emails(ids))
    sent_by = [{i for i, status in result.items() if status == "sent"} for result in results]
    assert sent_by[0] | sent_by[1] == set(ids) and not sent_by[0] & sent_by[1]
    assert len(mail_sink.messages()) == 6
    assert len(renders) <= len(ids) + 2


@pytest.mark.parametrize("when", ["ahead", "claimed"])
def test_a_tasks_time_limit_while_an_email_is_made_reaches_the_task_and_fails_no_email(
    app, mail_sink, monkeypatch, when
):
    """Celery's soft time limit is an Exception: taken for an email that cannot be made, it would
    fail that email for good, or vanish and let the batch run on to the hard kill mid-conversation."""
    from billiard.exceptions import SoftTimeLimitExceeded

    ids = _queue_for_the_sender("a@example.org")
    renders = []

    def render(*args, **kwargs):
        renders.append(1)
        if when == "claimed" and len(renders) == 1:
            # Not made ahead: made again once claimed, where the time limit comes.
            raise jinja2.TemplateError("a catalog's broken placeholder, for the first try")
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(email_module, "render_email", render)
    with pytest.raises(SoftTimeLimitExceeded):
        deliver_emails(ids)
    db.session.rollback()
    assert _statuses(ids)[0][0] != "failed"
    assert _received(mail_sink) == []

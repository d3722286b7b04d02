"""Faults of the broker and the worker, black box: leads are never lost and never routed twice."""

import os
import signal
import time

import redis

from leads.messaging import outbox
from tests.fault.conftest import CLINICS, EMAILS_PER_LEAD, in_background, pause
from tests.helpers import wait_until

LEADS = 30


def test_redis_stopped_while_patients_submit_delays_routing_only(healthy):
    stack = healthy
    tag = stack.new_tag("redis-stopped")
    stack.redis.stop()
    answers = stack.submit(tag, LEADS)
    stack.redis.start()

    stack.wait_until_routed(tag, LEADS)
    stack.wait_until_settled(tag, LEADS * EMAILS_PER_LEAD)
    figures = stack.figures("Redis stopped while patients submit, then started", tag, answers)
    assert answers == {303: LEADS}
    assert figures["stored"] == LEADS and figures["patients stored twice"] == 0
    assert figures["routed"] == LEADS and figures["duplicate assignments"] == 0
    assert figures["sent"] == figures["delivered"] == LEADS * EMAILS_PER_LEAD
    assert figures["delivered twice"] == 0


def test_a_worker_killed_while_leads_route_loses_nothing(healthy):
    """Pool processes killed twice and the main process once: every lead is routed once; an
    email goes twice only if a kill fell between the server's 250 and the record, and then with
    the same Message-ID (counted in `delivered twice`, at most one per kill)."""
    stack = healthy
    tag = stack.new_tag("worker-killed")
    submitting = in_background(stack.submit, tag, LEADS, 2)
    kills = 0
    for _ in range(2):
        wait_until(stack.worker.child_pids, timeout=30)
        pause(1.0)
        for child in stack.worker.child_pids():
            os.kill(child, signal.SIGKILL)
            kills += 1
    pause(1.0)
    os.kill(stack.worker.process.pid, signal.SIGKILL)
    stack.worker.process.wait()
    kills += 1
    answers = submitting.result(timeout=120)
    stack.worker.start()

    stack.wait_until_routed(tag, LEADS, timeout=120)
    stack.wait_until_settled(tag, LEADS * EMAILS_PER_LEAD, timeout=120)
    figures = stack.figures("worker pool processes and main process killed while leads route", tag, answers)
    assert answers == {303: LEADS}
    assert figures["stored"] == LEADS and figures["routed"] == LEADS
    assert figures["duplicate assignments"] == 0
    assert figures["sent"] == LEADS * EMAILS_PER_LEAD
    assert figures["delivered"] - figures["delivered twice"] == LEADS * EMAILS_PER_LEAD
    assert figures["delivered twice"] <= kills


def test_redis_restarted_empty_while_leads_wait_in_the_queue(healthy):
    """The routing tasks die with Redis's data: beat routes the leads once they are older than
    ROUTING_RETRY_AFTER_SECONDS, and the lost emails go out after EMAIL_SAFETY_NET_SECONDS."""
    stack = healthy
    tag = stack.new_tag("redis-emptied")
    stack.worker.stop()
    answers = stack.submit(tag, 20)
    assert redis.Redis.from_url(stack.redis.url).llen(outbox.ROUTING_QUEUE) >= 20
    stack.redis.stop()  # no persistence: the queued tasks are gone
    stack.redis.start()
    stack.worker.start()

    stack.wait_until_routed(tag, 20, timeout=120)
    stack.wait_until_settled(tag, 20 * EMAILS_PER_LEAD, timeout=120)
    figures = stack.figures("Redis restarted with its data deleted while leads wait", tag, answers)
    assert answers == {303: 20}
    assert figures["routed"] == 20 and figures["duplicate assignments"] == 0
    assert figures["delivered"] == figures["sent"] == 20 * EMAILS_PER_LEAD
    assert figures["delivered twice"] == 0


def test_every_task_published_twice_more_with_two_beats_changes_nothing(healthy):
    stack = healthy
    tag = stack.new_tag("published-thrice")
    second_beat = stack.start_beat()
    answers = stack.submit(tag, 20)
    stack.wait_until_routed(tag, 20)
    celery_app = stack.app.extensions["celery"]
    with stack.app.app_context():
        for lead in stack.leads(tag):
            for _ in range(2):
                celery_app.send_task("workers.route_lead", kwargs={"lead_id": lead.id})
        for email in stack.emails(tag):
            for _ in range(2):
                celery_app.send_task("workers.send_email", kwargs={"email_id": email.id})
    stack.wait_until_settled(tag, 20 * EMAILS_PER_LEAD)
    pause(3.0)  # the extra tasks are consumed meanwhile; none may send anything again
    assert second_beat.poll() is None
    figures = stack.figures("every routing and email task published twice more, two beats", tag, answers)
    assert figures["routed"] == 20 and figures["duplicate assignments"] == 0
    assert figures["delivered"] == 20 * EMAILS_PER_LEAD and figures["delivered twice"] == 0


def test_a_worker_started_while_redis_is_down_consumes_once_it_returns(healthy):
    """The worker keeps trying to reach the broker instead of exiting, and routes and sends as
    soon as Redis is back (the figure printed: seconds from Redis's return to the last lead routed)."""
    stack = healthy
    tag = stack.new_tag("worker-before-redis")
    stack.worker.stop()
    stack.redis.stop()
    stack.worker.start(wait=False)
    answers = stack.submit(tag, 10)
    pause(3.0)
    assert stack.worker.process.poll() is None, "the worker gave up while Redis was down"
    stack.redis.start()
    back = time.monotonic()

    stack.wait_until_routed(tag, 10)
    routed_after = time.monotonic() - back
    stack.wait_until_settled(tag, 10 * EMAILS_PER_LEAD)
    figures = stack.figures("worker started while Redis was down, then Redis started", tag, answers)
    print(f"  all 10 leads routed {routed_after:.1f} s after Redis returned")
    assert answers == {303: 10}
    assert figures["routed"] == 10 and figures["duplicate assignments"] == 0
    assert figures["sent"] == figures["delivered"] == 10 * EMAILS_PER_LEAD


def _waiting_in(url: str, queue: str) -> int:
    """Tasks waiting in a queue, at every priority (kombu keeps a list per priority step)."""
    client = redis.Redis.from_url(url)
    return sum(client.llen(key) for key in client.scan_iter(match=f"{queue}*") if client.type(key) == b"list")


def test_redis_restarted_empty_while_the_worker_is_busy_loses_no_email(healthy):
    """The worker is in the middle of a backlog (a slow mail server) when Redis comes back empty:
    the send tasks queued, and the routings not yet taken, are gone; the tasks it runs finish and
    their acknowledgements go to the new, empty Redis. Beat's nets route and send the rest, once."""
    stack = healthy
    tag = stack.new_tag("redis-emptied-busy")
    for address in CLINICS:
        stack.sink.delay[address] = 0.3
    answers = stack.submit(tag, 15)
    wait_until(lambda: _waiting_in(stack.redis.url, outbox.EMAIL_QUEUE) >= 3, timeout=30)
    stack.redis.stop()  # no persistence: the queued tasks are gone
    stack.redis.start()
    stack.sink.delay.clear()

    stack.wait_until_routed(tag, 15, timeout=60)
    stack.wait_until_settled(tag, 15 * EMAILS_PER_LEAD, timeout=60)
    figures = stack.figures("Redis restarted empty while the worker works through a backlog", tag, answers)
    assert answers == {303: 15}
    assert figures["routed"] == 15 and figures["duplicate assignments"] == 0
    assert figures["sent"] == figures["delivered"] == 15 * EMAILS_PER_LEAD
    assert figures["delivered twice"] == 0


def test_beat_down_through_a_redis_outage_then_back_routes_every_lead_once(healthy):
    """Patients submit while Redis is down and beat is stopped: only the outbox holds their leads.
    Redis returns first; the leads wait for the outbox sweep until beat is started again."""
    stack = healthy
    tag = stack.new_tag("beat-down")
    [beat] = stack.beats
    stack.stop_beat(beat)
    stack.redis.stop()
    answers = stack.submit(tag, 10)
    stack.redis.start()
    pause(3.0)  # beat stays down a while after Redis returns
    unrouted = [lead for lead in stack.leads(tag) if lead.status == "new"]
    stack.start_beat()

    stack.wait_until_routed(tag, 10)
    stack.wait_until_settled(tag, 10 * EMAILS_PER_LEAD)
    figures = stack.figures("beat stopped through a Redis outage, then started", tag, answers)
    assert answers == {303: 10} and len(unrouted) == 10  # nothing but beat publishes them
    assert figures["routed"] == 10 and figures["duplicate assignments"] == 0
    assert figures["sent"] == figures["delivered"] == 10 * EMAILS_PER_LEAD
    assert figures["delivered twice"] == 0

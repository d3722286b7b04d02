"""The embedded SQLite database held by another writer, black box: patients wait or are asked to
send again with their answers kept, never a 500; the form page never waits on a writer."""

import sqlite3
import time
from collections import Counter
from concurrent.futures import Future

from leads import SQLITE_BUSY_MS
from tests.fault.conftest import EMAILS_PER_LEAD, in_background, pause

LEADS = 20


def _hold_write_lock(stack, seconds: float, started) -> None:
    """Another process's writer: BEGIN IMMEDIATE on the stack's database file, held `seconds`."""
    connection = sqlite3.connect(stack.database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        started.set_result(time.monotonic())
        pause(seconds)
        connection.execute("COMMIT")
    finally:
        connection.close()


def _locked(stack, seconds: float):
    started = Future()
    holding = in_background(_hold_write_lock, stack, seconds, started)
    started.result(timeout=10)
    return holding


def test_a_write_lock_shorter_than_the_wait_only_delays_the_patients(healthy):
    """Held for half of SQLITE_BUSY_MS while patients submit: every one gets the 303 once the lock
    goes; meanwhile the form page answers without waiting for it."""
    stack = healthy
    tag = stack.new_tag("sqlite-locked")
    holding = _locked(stack, SQLITE_BUSY_MS / 2000)
    submitting = in_background(stack.submit, tag, LEADS)
    page = stack.get("/quote")
    read_while_locked = not holding.done()
    holding.result(timeout=60)
    answers = submitting.result(timeout=120)

    stack.wait_until_routed(tag, LEADS)
    stack.wait_until_settled(tag, LEADS * EMAILS_PER_LEAD)
    figures = stack.figures("SQLite write lock held while patients submit", tag, answers)
    assert page == 200 and read_while_locked  # the form page did not wait for the writer
    assert answers == {303: LEADS}
    assert figures["stored"] == LEADS and figures["patients stored twice"] == 0
    assert figures["routed"] == LEADS and figures["duplicate assignments"] == 0
    assert figures["sent"] == figures["delivered"] == LEADS * EMAILS_PER_LEAD


def test_a_write_lock_longer_than_the_wait_asks_patients_to_send_again_never_a_500(healthy):
    """Held longer than SQLITE_BUSY_MS: a patient who cannot be stored in time gets a 503 with
    their answers, never a 500; sending again stores each patient exactly once."""
    stack = healthy
    tag = stack.new_tag("sqlite-locked-long")
    holding = _locked(stack, SQLITE_BUSY_MS / 1000 + 3)
    patients = stack.patients(tag, LEADS)
    first = in_background(stack.send, patients)
    holding.result(timeout=60)
    answers = first.result(timeout=120)
    again = stack.send([p for p, status in zip(patients, answers, strict=True) if status != 303])

    stack.wait_until_routed(tag, LEADS)
    stack.wait_until_settled(tag, LEADS * EMAILS_PER_LEAD)
    figures = stack.figures(
        "SQLite write lock held past the wait, 503s sent again", tag, Counter(answers) + Counter(again)
    )
    assert set(answers) <= {303, 503} and set(again) <= {303}
    assert figures["stored"] == LEADS and figures["patients stored twice"] == 0
    assert figures["routed"] == LEADS and figures["duplicate assignments"] == 0
    assert figures["sent"] == figures["delivered"] == LEADS * EMAILS_PER_LEAD
    assert figures["delivered twice"] == 0

"""Workers killed in the narrowest window, black box: the mail server has kept a message and
answers 250, and the worker has not recorded it yet (the test holds the database's write lock from
the server's side, so the record waits, then kills). The README's promise there: that one email
may go twice, with the same Message-ID and an `email_may_have_arrived_twice` event on its lead;
nothing else goes twice, nothing stays claimed, and what the batch recorded before the kill is
acted on."""

import contextlib
import os
import re
import signal
import sqlite3
from pathlib import Path

from tests.fault.conftest import CLINICS, EMAILS_PER_LEAD, pause
from tests.helpers import wait_until

NO_SUCH_USER = "550 5.1.1 No such user here"
NO_SUCH_USER = "550 5.1.1 No such user here"


class WriteLock:
    """Another process's writer on the stack's SQLite file: while it holds the lock, every
    commit of the stack waits (up to SQLITE_BUSY_MS)."""

    def __init__(self, stack) -> None:
        self.path = stack.database_url.removeprefix("sqlite:///")
        self.connection: sqlite3.Connection | None = None

    def take(self) -> None:
        self.connection = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.connection is not None:
            self.connection.execute("COMMIT")
            self.connection.close()
            self.connection = None


class KeptUnrecorded:
    """The sink's hook: the first message kept for one of `addresses` takes the write lock before
    its 250 goes, so the worker that sent it cannot record it. Remembers its Message-ID and the
    sending connection's port."""

    def __init__(self, lock: WriteLock, addresses: set[str]) -> None:
        self.lock, self.addresses = lock, addresses
        self.message_id: str | None = None
        self.port: int | None = None

    def __call__(self, envelope, session) -> None:
        if self.port is not None or not self.addresses & {a.lower() for a in envelope.rcpt_tos}:
            return
        self.lock.take()
        content = envelope.original_content or envelope.content
        self.message_id = re.search(rb"^Message-ID: *(<[^>]+>)", content, re.M | re.I).group(1).decode()
        self.port = session.peer[1]


def _process_on_port(pids: list[int], port: int) -> int | None:
    """Which of `pids` holds the client end of the TCP connection from local port `port` (read
    from /proc, Linux only, as `Worker.child_pids`)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            if sockets & {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}:
                return pid
        except OSError:  # the process or one of its descriptors went meanwhile
            continue
    return None


def test_a_pool_process_killed_between_the_servers_250_and_the_record_sends_that_email_twice_only(healthy):
    """One lead, its three provider emails in one task: the first kept by the server is never
    recorded. The task is redelivered at once (reject_on_worker_lost) and sends the other two once;
    the sweep takes the claim back after EMAIL_CLAIM_TIMEOUT_SECONDS and that email goes again."""
    stack = healthy
    tag = stack.new_tag("killed-before-record")
    lock = WriteLock(stack)
    kept = KeptUnrecorded(lock, set(CLINICS))
    stack.sink.on_kept = kept
    try:
        answers = stack.submit(tag, 1)
        wait_until(lambda: kept.port is not None, timeout=60)
        stack.sink.on_kept = None
        sender = wait_until(lambda: _process_on_port(stack.worker.child_pids(), kept.port))
        pause(0.5)  # the 250 reaches the sender, whose record now waits for the lock
        os.kill(sender, signal.SIGKILL)
    finally:
        lock.release()

    emails = stack.wait_until_settled(tag, EMAILS_PER_LEAD, timeout=60)
    figures = stack.figures("pool process killed between the 250 and the record", tag, answers)
    delivered = stack.delivered()
    [victim] = [email for email in emails if email.message_id == kept.message_id]
    assert answers == {303: 1} and figures["routed"] == 1 and figures["duplicate assignments"] == 0
    assert delivered[victim.message_id] == 2 and victim.attempts == 2
    assert all(delivered[email.message_id] == 1 for email in emails if email is not victim)
    assert len(stack.events(tag, "email_may_have_arrived_twice")) == 1


def test_a_bounce_recorded_before_the_whole_worker_was_killed_is_still_handled(healthy):
    """Each clinic's first address refuses (550), its second takes the email. The whole worker
    dies (its main process first, so nothing is redelivered) while the server's 250 for a second
    address waits to be recorded: the transaction that claimed that email recorded the first
    clinic's refusal, whose task is gone until the broker's visibility timeout (900 s). The due-email
    sweep handles that bounce: the refusing address is flagged as every other refusing address is."""
    stack = healthy
    tag = stack.new_tag("killed-after-bounce")
    clinics = {f"Fault Clinic {number}": address for number, address in enumerate(CLINICS, start=1)}
    old = {name: f"old-{address}" for name, address in clinics.items()}
    lock = WriteLock(stack)
    kept = KeptUnrecorded(lock, set(CLINICS))
    try:
        for name, address in clinics.items():
            stack.set_addresses(name, [old[name], address])
            stack.sink.refuse[old[name]] = NO_SUCH_USER
        stack.sink.on_kept = kept
        try:
            answers = stack.submit(tag, 1)
            wait_until(lambda: kept.port is not None, timeout=60)
            stack.sink.on_kept = None
            pool = stack.worker.child_pids()
            wait_until(lambda: _process_on_port(pool, kept.port))
            pause(0.5)  # the 250 reaches the sender, whose record now waits for the lock
            os.kill(stack.worker.process.pid, signal.SIGKILL)  # first: its tasks are not redelivered
            stack.worker.process.wait()
            for child in pool:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
        finally:
            lock.release()
        stack.worker.start()

        emails = stack.wait_until_settled(tag, 3 * 2 + 1, timeout=60)  # three clinics, the patient
        refused = {email.to_address for email in emails if email.status == "failed"}
        wait_until(lambda: stack.flagged(refused) == refused, timeout=30)
        figures = stack.figures("whole worker killed after a refusal was recorded", tag, answers)
        assert answers == {303: 1} and figures["routed"] == 1 and figures["duplicate assignments"] == 0
        assert len(refused) == 3 and refused <= set(old.values())
        assert stack.unhandled_bounces(tag) == []
        # Only the email in the server's hands at the kill went twice.
        assert figures["sent"] == 4 and figures["delivered"] == 5 and figures["delivered twice"] == 1
    finally:
        for name, address in clinics.items():
            stack.set_addresses(name, [address])
        stack.forget_flags(set(old.values()))

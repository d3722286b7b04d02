"""The SMTP connection a sender keeps between messages, against real aiosmtpd servers: its idle
watcher ends with it, and its QUIT never holds up the sender."""

import asyncio
import smtplib
import threading
from email.message import EmailMessage as Message

import pytest
from aiosmtpd.controller import Controller

from leads.dev.mailsink import MailSink
from leads.extensions import db
from leads.messaging import smtp_connection
from leads.messaging.email import deliver_emails, queue_email
from leads.timeutil import utcnow
from tests.helpers import wait_until
from tests.servers import free_port

# The burst goes through the sender's claims and records, on either database.
pytestmark = pytest.mark.pg

WATCHER = "smtp-idle-close"


def _watchers() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == WATCHER}


def test_a_burst_of_refused_addresses_leaves_no_idle_watcher_asleep(app, mail_sink, monkeypatch):
    """Each refusal closes its connection (its watcher asleep since the message before went out);
    the watcher of each ends with it, not an idle period later."""
    monkeypatch.setattr(smtp_connection, "SMTP_IDLE_SECONDS", 3600)  # a watcher left asleep stays
    monkeypatch.setattr(smtp_connection, "_this_thread", threading.local())  # no connection kept yet
    addresses = []
    for n in range(5):
        addresses += [f"clinic{n}@example.org", f"gone{n}@example.org"]
        mail_sink.refuse[f"gone{n}@example.org"] = "550 5.1.1 No such user"
    ids = [
        queue_email(template="test_message", to=address, idempotency_key=f"burst:{address}", sent_at=utcnow())
        for address in addresses
    ]
    db.session.commit()
    threads_before, watchers_before, quits_before = threading.active_count(), _watchers(), mail_sink.quits

    assert list(deliver_emails(ids).values()) == ["sent", "failed"] * 5

    assert mail_sink.quits - quits_before == 5  # one connection per pair, closed at its refusal
    wait_until(lambda: not _watchers() - watchers_before, timeout=15)
    assert threading.active_count() <= threads_before


class SlowToSayGoodbye(MailSink):
    """Keeps messages as the sink does, and answers QUIT only once the test lets it."""

    def __init__(self, directory) -> None:
        super().__init__(directory)
        self.quit_began = threading.Event()
        self.answer_quit = threading.Event()

    async def handle_QUIT(self, server, session, envelope):
        self.quit_began.set()
        while not self.answer_quit.is_set():  # the other conversations go on meanwhile
            await asyncio.sleep(0.05)
        return await super().handle_QUIT(server, session, envelope)


@pytest.fixture
def slow_server(tmp_path):
    handler = SlowToSayGoodbye(tmp_path / "mail")
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    handler.answer_quit.set()
    controller.stop()


def _message(to: str) -> Message:
    message = Message()
    message["From"], message["To"], message["Subject"] = "quotes@example.org", to, "Test"
    message.set_content("A test message.")
    return message


def test_a_sender_is_not_held_up_while_the_idle_connection_says_goodbye(app, slow_server, monkeypatch):
    """The watcher takes the idle connection out and QUITs it without the lock the sender needs:
    the next message goes over a new connection while the server still keeps the QUIT waiting."""
    handler, port = slow_server
    monkeypatch.setattr(smtp_connection, "SMTP_IDLE_SECONDS", 0.5)
    # A sender waiting for the QUIT would wait the server out: longer than the test waits.
    config = {**app.config, "SMTP_PORT": port, "SMTP_TIMEOUT": 120}
    next_message, sent, errors = threading.Event(), [], []

    def sender() -> None:  # one thread: the connection and its lock are the thread's own
        try:
            smtp_connection.send_on_open_connection(_message("first@example.org"), config)
            next_message.wait(timeout=30)
            smtp_connection.send_on_open_connection(_message("second@example.org"), config)
            sent.append("second")
        except (smtplib.SMTPException, OSError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        assert handler.quit_began.wait(timeout=15), "the idle connection was never closed"
        next_message.set()
        wait_until(lambda: sent or errors, timeout=15)
        assert sent == ["second"] and errors == []
        assert not handler.answer_quit.is_set()  # the QUIT still waits for its answer
        assert len(handler.messages()) == 2
    finally:
        handler.answer_quit.set()
        next_message.set()
        thread.join(timeout=60)

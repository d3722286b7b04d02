"""The SMTP connection each sender thread keeps open between messages: reused while it is fresh,
and closed politely (QUIT) once it has been idle for SMTP_IDLE_SECONDS. Each message's
conversation ends by a deadline of its own, whatever the server does (`Conversation`)."""

import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message as MimeMessage

from config import IMPLICIT_TLS, NO_TLS, STARTTLS

SMTP_IDLE_SECONDS = 30
# The waits from DATA on, each up to SMTP_TIMEOUT: DATA's answer, the message itself, its answer.
WAITS_FROM_DATA = 3


@dataclass(slots=True)
class Conversation:
    """One message's turn on the connection: over by `ends_by` (time.monotonic()), every wait cut
    short to end by then; `before_data` runs right before DATA and may refuse by raising NotOffered.
    `data_sent` says whether DATA went: from then on the server may keep the message."""

    ends_by: float
    before_data: Callable[[], None] | None = None
    data_sent: bool = False


class NotOffered(smtplib.SMTPException):
    """The message was not offered (no DATA), so the server cannot have it: too little time left
    for the waits from DATA on, or the sender's `before_data` refused."""


class OutOfTime(smtplib.SMTPServerDisconnected):
    """The conversation reached its deadline: the connection was closed where it stood."""


class _Timed:
    """What the SMTP clients below add to smtplib's: each wait (connecting, each command sent, each
    line of an answer) ends by the conversation's deadline, or after SMTP_TIMEOUT when sooner; and
    DATA goes only when its waits fit before the deadline, after the conversation's `before_data`."""

    conversation: Conversation | None

    def __init__(self, *args, conversation: Conversation | None = None, **kwargs) -> None:
        self.conversation = conversation  # before smtplib connects, in its __init__
        super().__init__(*args, **kwargs)

    def _wait_at_most(self) -> float:
        """The next wait's limit, set on the socket when there is one; OutOfTime once none is left."""
        if self.conversation is None:
            wait = self.timeout
        else:
            left = self.conversation.ends_by - time.monotonic()
            if left <= 0:
                self.close()
                raise OutOfTime("the conversation reached its deadline")
            wait = min(self.timeout, left)
        if self.sock is not None:
            self.sock.settimeout(wait)
        return wait

    def _get_socket(self, host, port, timeout):
        return super()._get_socket(host, port, min(timeout, self._wait_at_most()))

    def send(self, s) -> None:
        if self.sock is not None:
            self._wait_at_most()
        super().send(s)

    def getreply(self):
        if self.file is None and self.sock is not None:
            self.file = _TimedLines(self.sock.makefile("rb"), self._wait_at_most)
        return super().getreply()

    def data(self, msg):
        conversation = self.conversation
        if conversation is not None:
            _room_for_the_message(conversation, self.timeout)
            if conversation.before_data is not None:
                conversation.before_data()
                _room_for_the_message(conversation, self.timeout)  # the hook may have waited
            conversation.data_sent = True
        return super().data(msg)


def _room_for_the_message(conversation: Conversation, step_timeout: float) -> None:
    left = conversation.ends_by - time.monotonic()
    if left < WAITS_FROM_DATA * step_timeout:
        raise NotOffered(
            f"{left:.1f} s left of the time its claim allows, too little for the message "
            f"({WAITS_FROM_DATA} waits of up to {step_timeout:g} s)"
        )


class _TimedLines:
    """The connection's answers, read a line at a time, each read ending by the deadline."""

    def __init__(self, file, before_read: Callable[[], float]) -> None:
        self._file, self._before_read = file, before_read

    def readline(self, size: int = -1) -> bytes:
        self._before_read()
        return self._file.readline(size)

    def close(self) -> None:
        self._file.close()


class _TimedSMTP(_Timed, smtplib.SMTP):
    pass


class _TimedSMTPS(_Timed, smtplib.SMTP_SSL):
    pass


class _HeldConnection:
    """A sender thread's connection. Its lock is held while it is used, or taken out to be closed,
    so the idle closer never closes it in the middle of a conversation; the QUIT itself goes after
    the lock is released (`_quit`), since a slow server would hold up the sender waiting for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.smtp: smtplib.SMTP | None = None
        self.key: tuple | None = None
        self.used = 0.0
        # Set once the connection held now is taken out: its idle watcher ends at once.
        self.taken_out = threading.Event()

    def hold(self, smtp: smtplib.SMTP, key: tuple) -> threading.Event:
        """Keep `smtp`, just opened (the caller holds the lock); the event set when it is taken out."""
        self.smtp, self.key, self.taken_out = smtp, key, threading.Event()
        return self.taken_out

    def take_out(self) -> smtplib.SMTP | None:
        """The connection held, no longer held (the caller holds the lock, and QUITs it after)."""
        smtp, self.smtp = self.smtp, None
        self.taken_out.set()
        return smtp


_this_thread = threading.local()


def send_on_open_connection(message: MimeMessage, config, conversation: Conversation | None = None) -> None:
    """Send over this thread's open connection when it still answers, else over a new one; with
    `conversation`, every wait of it (the check, a new connection, the QUIT of one that failed) ends
    by its deadline.

    A reused connection is checked with NOOP before the message goes: once the message is handed
    over, a dropped connection may mean it was accepted, so it is never sent again on the spot (the
    retry schedule sends it again, counted as an attempt). Any failure closes the connection, so
    the next message starts from a clean conversation.
    """
    key = (
        config["SMTP_HOST"],
        config["SMTP_PORT"],
        config["SMTP_TLS"],
        config["SMTP_USERNAME"],
        config["SMTP_TIMEOUT"],  # each wait's limit is the connection's own
    )
    held = _held_connection()
    to_quit: list[smtplib.SMTP | None] = []
    try:
        with held.lock:
            smtp = held.smtp
            if smtp is not None:
                smtp.conversation = conversation
            usable = (
                smtp is not None
                and held.key == key
                and time.monotonic() - held.used < SMTP_IDLE_SECONDS
                and _answers(smtp)
            )
            try:
                if not usable:
                    to_quit.append(held.take_out())
                    smtp = _open_connection(config, conversation)
                    _close_when_idle(held, smtp, held.hold(smtp, key))
                smtp.send_message(message)
            except BaseException:
                to_quit.append(held.take_out())
                raise
            held.used = time.monotonic()
            smtp.conversation = None  # kept open: its next waits are the next message's, or its QUIT's
    finally:
        for smtp in to_quit:
            _quit(smtp)


def _held_connection() -> _HeldConnection:
    held = getattr(_this_thread, "connection", None)
    if held is None:
        held = _this_thread.connection = _HeldConnection()
    return held


def _close_when_idle(held: _HeldConnection, smtp: smtplib.SMTP, taken_out: threading.Event) -> None:
    """Watch the connection `smtp`, just opened, from a thread of its own (one per connection, not
    per message): QUIT once it has been idle for SMTP_IDLE_SECONDS; end as soon as it is taken out
    (closed or replaced), so a burst of failures that each close one leaves no watchers asleep.
    Else it would stay open until the server drops it."""

    def watch() -> None:
        while True:
            with held.lock:
                if held.smtp is not smtp:
                    return
                idle = time.monotonic() - held.used
                if idle >= SMTP_IDLE_SECONDS:
                    held.take_out()
                    break
            if taken_out.wait(SMTP_IDLE_SECONDS - idle):
                return
        _quit(smtp)  # the lock released: a sender opens a new connection meanwhile

    threading.Thread(target=watch, name="smtp-idle-close", daemon=True).start()


def _quit(smtp: smtplib.SMTP | None) -> None:
    """End a conversation politely, or just close the socket when the server does not answer."""
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _answers(smtp: smtplib.SMTP) -> bool:
    """Whether an idle connection is still there (the server may have closed it meanwhile)."""
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _open_connection(config, conversation: Conversation | None = None) -> smtplib.SMTP:
    """A new conversation, encrypted as SMTP_TLS says (STARTTLS, or TLS from the first byte), then
    authenticated when SMTP_USERNAME is set; with `conversation`, over by its deadline."""
    tls, timeout = config["SMTP_TLS"], config["SMTP_TIMEOUT"]
    # Verify the certificate: credentials and health-adjacent mail never go to an impostor.
    context = None if tls == NO_TLS else ssl.create_default_context(cafile=config.get("SMTP_CA_FILE"))
    host, port = config["SMTP_HOST"], config["SMTP_PORT"]
    if tls == IMPLICIT_TLS:
        smtp = _TimedSMTPS(host, port, timeout=timeout, context=context, conversation=conversation)
    else:
        smtp = _TimedSMTP(host, port, timeout=timeout, conversation=conversation)
    try:
        if tls == STARTTLS:
            smtp.starttls(context=context)
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
    except BaseException:
        smtp.close()
        raise
    return smtp

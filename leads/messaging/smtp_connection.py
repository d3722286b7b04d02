"""The SMTP connection each sender thread keeps open between messages: reused while it is fresh,
and closed politely (QUIT) once it has been idle for SMTP_IDLE_SECONDS."""

import smtplib
import ssl
import threading
import time
from email.message import Message as MimeMessage

from config import IMPLICIT_TLS, NO_TLS, STARTTLS

SMTP_IDLE_SECONDS = 30


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


def send_on_open_connection(message: MimeMessage, config) -> None:
    """Send over this thread's open connection when it still answers, else over a new one.

    A reused connection is checked with NOOP before the message goes: once the message is handed
    over, a dropped connection may mean it was accepted, so it is never sent again on the spot (the
    retry schedule sends it again, counted as an attempt). Any failure closes the connection, so
    the next message starts from a clean conversation.
    """
    key = (config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TLS"], config["SMTP_USERNAME"])
    held = _held_connection()
    to_quit: list[smtplib.SMTP | None] = []
    try:
        with held.lock:
            smtp = held.smtp
            usable = (
                smtp is not None
                and held.key == key
                and time.monotonic() - held.used < SMTP_IDLE_SECONDS
                and _answers(smtp)
            )
            try:
                if not usable:
                    to_quit.append(held.take_out())
                    smtp = _open_connection(config)
                    _close_when_idle(held, smtp, held.hold(smtp, key))
                smtp.send_message(message)
            except BaseException:
                to_quit.append(held.take_out())
                raise
            held.used = time.monotonic()
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


def _open_connection(config) -> smtplib.SMTP:
    """A new conversation, encrypted as SMTP_TLS says (STARTTLS, or TLS from the first byte), then
    authenticated when SMTP_USERNAME is set."""
    tls, timeout = config["SMTP_TLS"], config["SMTP_TIMEOUT"]
    # Verify the certificate: credentials and health-adjacent mail never go to an impostor.
    context = None if tls == NO_TLS else ssl.create_default_context(cafile=config.get("SMTP_CA_FILE"))
    if tls == IMPLICIT_TLS:
        smtp = smtplib.SMTP_SSL(config["SMTP_HOST"], config["SMTP_PORT"], timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=timeout)
    try:
        if tls == STARTTLS:
            smtp.starttls(context=context)
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
    except BaseException:
        smtp.close()
        raise
    return smtp

"""The SMTP connection each sender thread keeps open between messages: reused while it is fresh,
and closed politely (QUIT) once it has been idle for SMTP_IDLE_SECONDS."""

import smtplib
import ssl
import threading
import time
from email.message import Message as MimeMessage

SMTP_IDLE_SECONDS = 30


class _HeldConnection:
    """A sender thread's connection. Its lock is held while it is used or closed, so the idle
    closer never closes it in the middle of a conversation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.smtp: smtplib.SMTP | None = None
        self.key: tuple | None = None
        self.used = 0.0

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


_this_thread = threading.local()


def send_on_open_connection(message: MimeMessage, config) -> None:
    """Send over this thread's open connection when it still answers, else over a new one.

    A reused connection is checked with NOOP before the message goes: once the message is handed
    over, a dropped connection may mean it was accepted, so it is never sent again on the spot (the
    retry schedule sends it again, counted as an attempt). Any failure closes the connection, so
    the next message starts from a clean conversation.
    """
    key = (config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_STARTTLS"], config["SMTP_USERNAME"])
    held = _held_connection()
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
                held.close()
                smtp = held.smtp = _open_connection(config)
                held.key = key
                _close_when_idle(held, smtp)
            smtp.send_message(message)
        except BaseException:
            held.close()
            raise
        held.used = time.monotonic()


def _held_connection() -> _HeldConnection:
    held = getattr(_this_thread, "connection", None)
    if held is None:
        held = _this_thread.connection = _HeldConnection()
    return held


def _close_when_idle(held: _HeldConnection, smtp: smtplib.SMTP) -> None:
    """Watch the connection `smtp`, just opened, from a thread of its own (one per connection, not
    per message): QUIT once it has been idle for SMTP_IDLE_SECONDS; leave it once it is closed or
    replaced. Else it would stay open until the server drops it."""

    def watch() -> None:
        while True:
            with held.lock:
                if held.smtp is not smtp:
                    return
                idle = time.monotonic() - held.used
                if idle >= SMTP_IDLE_SECONDS:
                    held.close()
                    return
            threading.Event().wait(SMTP_IDLE_SECONDS - idle)

    threading.Thread(target=watch, name="smtp-idle-close", daemon=True).start()


def _answers(smtp: smtplib.SMTP) -> bool:
    """Whether an idle connection is still there (the server may have closed it meanwhile)."""
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _open_connection(config) -> smtplib.SMTP:
    smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"])
    try:
        if config["SMTP_STARTTLS"]:
            # Verify the certificate: credentials and health-adjacent mail never go to an impostor.
            smtp.starttls(context=ssl.create_default_context(cafile=config.get("SMTP_CA_FILE")))
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
    except BaseException:
        smtp.close()
        raise
    return smtp

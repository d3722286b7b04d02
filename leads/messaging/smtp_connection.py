"""The SMTP connection each sender thread keeps open between messages, reused while it is fresh."""

import smtplib
import ssl
import threading
import time
from email.message import Message as MimeMessage

# One SMTP connection per worker thread, reused for the next message while it is fresh.
_connection = threading.local()
SMTP_IDLE_SECONDS = 30


def send_on_open_connection(message: MimeMessage, config) -> None:
    """Send over this thread's open connection when it still answers, else over a new one.

    A reused connection is checked with NOOP before the message goes: once the message is handed
    over, a dropped connection may mean it was accepted, so it is never sent again on the spot (the
    retry schedule sends it again, counted as an attempt). Any failure closes the connection, so
    the next message starts from a clean conversation.
    """
    key = (config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_STARTTLS"], config["SMTP_USERNAME"])
    smtp = getattr(_connection, "smtp", None)
    usable = (
        smtp is not None
        and _connection.key == key
        and time.monotonic() - _connection.used < SMTP_IDLE_SECONDS
        and _answers(smtp)
    )
    try:
        if not usable:
            _close_connection()
            smtp = _connection.smtp = _open_connection(config)
            _connection.key = key
        smtp.send_message(message)
    except BaseException:
        _close_connection()
        raise
    _connection.used = time.monotonic()


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


def _close_connection() -> None:
    smtp = getattr(_connection, "smtp", None)
    _connection.smtp = None
    if smtp is not None:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

"""Gunicorn settings, read from the working directory by `gunicorn wsgi:app`."""

from leads import create_app_or_exit
from leads.weblog import ACCESS_LOG_FORMAT

logger_class = "leads.weblog.RedactingLogger"
access_log_format = ACCESS_LOG_FORMAT

# A worker silent this long is killed and its request answered by the proxy (a 502). The database
# timeouts (DATABASE_* in config.py) stay below it, so a stuck database gives the app's 503 page.
timeout = 30
# On SIGTERM each worker may finish its request this long (quotes-web.service waits longer).
graceful_timeout = 30


def on_starting(server) -> None:
    """Build the app once in the master before any worker starts, and throw it away: a missing or
    wrong setting then stops gunicorn with its one-line message. Left to the workers, each would
    fail to boot with a traceback (and one that exits with the message alone is started again
    and again)."""
    create_app_or_exit()

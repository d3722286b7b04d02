"""Gunicorn settings, read from the working directory by `gunicorn wsgi:app`."""

from leads.weblog import ACCESS_LOG_FORMAT

logger_class = "leads.weblog.RedactingLogger"
access_log_format = ACCESS_LOG_FORMAT

# A worker silent this long is killed and its request answered by the proxy (a 502). The database
# timeouts (DATABASE_* in config.py) stay below it, so a stuck database gives the app's 503 page.
timeout = 30
# On SIGTERM each worker may finish its request this long (quotes-web.service waits longer).
graceful_timeout = 30

"""Gunicorn settings, read from the working directory by `gunicorn wsgi:app`."""

from leads.weblog import ACCESS_LOG_FORMAT

logger_class = "leads.weblog.RedactingLogger"
access_log_format = ACCESS_LOG_FORMAT

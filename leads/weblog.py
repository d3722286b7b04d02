"""Gunicorn access-log lines that carry no link tokens, query strings, cookies or referrers.

Link tokens open a patient's or provider's page, and query strings may hold filters; neither belongs
in a log file that outlives them. Gunicorn loads this class through `gunicorn.conf.py`.
"""

import re

from gunicorn.glogging import Logger

# Routes whose last path segment is a secret: the provider's and the patient's links.
_TOKEN_PATH = re.compile(r"/(p|my-request)/[^/?#\s]+")
_KEPT_HEADERS = {"{user-agent}i", "{host}i", "{x-request-id}i", "{content-type}o", "{content-length}o"}
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'


def redact_target(target: str) -> str:
    """A request target or URL with tokens replaced and the query string and fragment cut off."""
    if not target or target == "-":
        return target
    path, question, _ = target.partition("#")[0].partition("?")
    path = _TOKEN_PATH.sub(r"/\1/[token]", path)
    return path + ("?[redacted]" if question else "")


class RedactingLogger(Logger):
    """Gunicorn's logger with the request line, path, query and referrer redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        method, _, rest = atoms["r"].partition(" ")
        target, _, protocol = rest.rpartition(" ")
        atoms["r"] = f"{method} {redact_target(target)} {protocol}"
        atoms["U"] = redact_target(atoms["U"] or "")
        atoms["q"] = "[redacted]" if atoms["q"] else ""
        atoms["f"] = redact_target(atoms["f"])
        for key in [k for k in atoms if k.startswith("{") and k not in _KEPT_HEADERS]:
            del atoms[key]
        return atoms

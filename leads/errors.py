"""Error pages: plain words for people, a JSON reason for API clients, never a stack trace."""

import logging
import traceback

import sqlalchemy as sa
from flask import Flask, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from leads.extensions import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("Something in the request was not right"), _l("Please go back and try again.")),
    403: (_l("You cannot open this page"), _l("Your account does not have access to this page.")),
    404: (_l("Page not found"), _l("The address may be mistyped, or the page may have moved.")),
    405: (_l("That did not work"), _l("This page cannot be used that way.")),
    413: (
        _l("That was too much to send"),
        _l("What you sent is larger than we accept. Please send less and try again."),
    ),
    429: (_l("Too many attempts"), _l("Please wait a minute and try again.")),
    500: (_l("Something went wrong on our side"), _l("The team has been told.")),
    503: (_l("The service is busy for a moment"), _l("We could not reach our database just now.")),
}


def _respond(code: int, reason: str | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400])
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify(error=reason or str(title)), code
    return render_template("errors/error.html", code=code, title=title, message=message), code


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return _respond(error.code or 500, error.description if error.code and error.code < 500 else None)

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    def _database_unavailable(error):
        db.session.rollback()
        log.error(
            "database unavailable: %s", type(error.orig).__name__ if error.orig else type(error).__name__
        )
        return _respond(503)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        db.session.rollback()
        if isinstance(error, sa.exc.StatementError):
            # The driver's message can quote row values (PostgreSQL: "Key (email)=(…) already
            # exists"), so log where it happened and what kind of error, never the message.
            log.error(
                "unhandled database error on %s %s: %s (%s)\n%s",
                request.method,
                request.endpoint,
                type(error).__name__,
                type(getattr(error, "orig", None)).__name__,
                "".join(traceback.format_tb(error.__traceback__)),
            )
        else:
            log.exception("unhandled error on %s %s", request.method, request.endpoint)
        return _respond(500)

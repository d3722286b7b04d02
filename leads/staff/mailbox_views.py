"""The development mailbox at /staff/mailbox: what the local SMTP sink received, readable in
the browser. It exists only while APP_ENV is development; elsewhere every page is a 404."""

from flask import abort, current_app, make_response, render_template

from leads.auth import staff_required
from leads.staff import bp, mailbox


def _mail_dir() -> str:
    if current_app.config.get("APP_ENV") != "development":
        abort(404)
    return current_app.config["MAIL_SINK_DIR"]


@bp.get("/mailbox")
@staff_required
def mailbox_list():
    directory = _mail_dir()
    messages, total = mailbox.list_messages(directory)
    return render_template("staff/mailbox.html", messages=messages, total=total, limit=mailbox.LIST_LIMIT)


@bp.get("/mailbox/<name>")
@staff_required
def mailbox_message(name: str):
    message = mailbox.read_message(_mail_dir(), name) or abort(404)
    return render_template("staff/mailbox_message.html", message=message)


@bp.get("/mailbox/<name>/html")
@staff_required
def mailbox_message_html(name: str):
    """The HTML part alone, for a sandboxed frame: no scripts, no requests out, same-site framing only."""
    message = mailbox.read_message(_mail_dir(), name) or abort(404)
    if message.html is None:
        abort(404)
    response = make_response(message.html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = (
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response

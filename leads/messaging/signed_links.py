"""What the pages behind signed email links (providers', patients') share: responses that are
never cached or indexed, and one clear page for a link that cannot be used."""

from flask import Blueprint, current_app, render_template
from flask_babel import gettext

from leads.messaging import tokens


def link_problem(message: str, status: int):
    """A page saying what is wrong with the link and whom to write to; it shows no data."""
    contact = current_app.config["COORDINATOR_EMAIL"]
    return render_template("link_problem.html", message=message, contact=contact), status


def _bad_token(error: tokens.TokenError):
    if isinstance(error, tokens.ExpiredToken):
        return link_problem(gettext("This link has expired."), 410)
    return link_problem(gettext("This link is not valid. It may have been copied incompletely."), 404)


def _private(response):
    # Health data: never cached, never indexed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def protect(bp: Blueprint) -> None:
    """Make every page of `bp` private and answer bad or expired tokens with the link problem page."""
    bp.after_request(_private)
    bp.register_error_handler(tokens.TokenError, _bad_token)

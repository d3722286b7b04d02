"""What the pages behind signed email links (providers', patients') share: responses that are
never cached or indexed, and one clear page for a link that cannot be used."""

from collections.abc import Mapping

from flask import Blueprint, current_app, render_template
from flask_babel import gettext

from leads.messaging import tokens

# Headers by which a browser, a mail client or a link checker says it fetches a page ahead of a
# person (a prefetch, a prerender, a preview), each with the values that say so: Chrome's
# Sec-Purpose (`prefetch`, `prefetch;prerender`), the older Purpose, Safari's X-Purpose, Firefox's
# X-Moz.
_AHEAD_OF_A_PERSON = {
    "Sec-Purpose": {"prefetch", "preview"},
    "Purpose": {"prefetch", "preview"},
    "X-Purpose": {"prefetch", "preview"},
    "X-Moz": {"prefetch"},
}


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


def opened_by_a_person(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request for a link's page may count as someone opening it: a GET that does not
    say it is a prefetch or a preview. A HEAD reads no page. A scanner that fetches the link
    without saying so cannot be told apart, and counts."""
    if method != "GET":
        return False
    for name, values in _AHEAD_OF_A_PERSON.items():
        # A list of items, each maybe with parameters: "prefetch;prerender", "prefetch, preview".
        for item in (headers.get(name) or "").split(","):
            if item.split(";", 1)[0].strip().lower() in values:
                return False
    return True


def protect(bp: Blueprint) -> None:
    """Make every page of `bp` private and answer bad or expired tokens with the link problem page."""
    bp.after_request(_private)
    bp.register_error_handler(tokens.TokenError, _bad_token)

"""Public routes: the quote form (GET|POST /quote, and / leading to it) and the thank-you page.

Whatever goes wrong on a POST, the patient gets the form back with their answers in it and a
message saying what happened: a refused time trap, a rate limit (429), an expired session (400)
or a database failure (503)."""

import logging
import time
from datetime import date
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, current_app, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, generate_csrf
from limits import parse_many
from werkzeug.exceptions import RequestEntityTooLarge

from config import ConfigError
from leads import consent, intake
from leads.errors import MESSAGES
from leads.extensions import db, limiter
from leads.i18n import countries, languages, page_language
from leads.intake import form_token
from leads.intake.choices import BUDGETS, CONTACT_PREFERENCES, EVIDENCE_LABELS, EVIDENCE_SHORT, TIMEFRAMES
from leads.intake.cleaning import DETAILS_MAX, EMAIL_MAX, NAME_MAX, PHONE_MAX, clean_referrer
from leads.intake.form_page import HOLES, FormPages
from leads.intake.forms import QuoteForm, check_answers
from leads.intake.service import UTM_FIELDS

log = logging.getLogger(__name__)

PREFILL_PARAMS = ("treatment", "condition", *UTM_FIELDS)
THANKS_KEY = "quote_thanks"
PAGES_KEY = "quote_form_pages"
PRIVACY_NOTICE_UPDATED = date(2026, 11, 29)
NO_STORE_ENDPOINTS = frozenset({"public.quote", "public.thanks"})

bp = Blueprint("public", __name__)


@bp.record_once
def _check_settings(state) -> None:
    """Refuse to start with a rate limit Flask-Limiter cannot read, naming the setting."""
    value = state.app.config["QUOTE_RATE_LIMIT"]
    try:
        parse_many(value)
    except ValueError as exc:
        raise ConfigError(
            f"QUOTE_RATE_LIMIT is not a rate limit such as '10 per minute;50 per hour': {value!r}"
        ) from exc
    for name in (
        "QUOTE_MIN_FILL_SECONDS",
        "QUOTE_FORM_MAX_AGE_SECONDS",
        "QUOTE_DUPLICATE_WINDOW_DAYS",
        "LEAD_SLA_HOURS",
        "TAXONOMY_CACHE_SECONDS",
    ):
        if state.app.config[name] < 0:
            raise ConfigError(f"{name} must not be negative")


RATE_LIMITED = _l(
    "You have sent this form many times in a short while, so we have paused it for your "
    "connection. Nothing new has been saved. Your answers are still here: please wait a minute, "
    "then press Send my request again."
)
SESSION_EXPIRED = _l(
    "Your session had expired, so we could not accept the form. Your answers are still here: "
    "please check them and press Send my request again."
)
DATABASE_DOWN = _l(
    "We could not save your request just now because of a problem on our side, and nothing has "
    "been saved. Your answers are still here: please wait a minute, then press Send my request again."
)


def _quote_rate_limit() -> str:
    return current_app.config["QUOTE_RATE_LIMIT"]


# The name of the language menu's buttons on the form's page (templates/base.html): buttons of
# the form, so the answers typed so far come with them, with or without JavaScript, sent to the
# menu's address (`?language=`, which chooses the language as a link does), to be shown again in
# that language. Nothing is checked or stored, so the rate limit, which counts attempts to send a
# request, leaves it out.
SWITCH_LANGUAGE = "switch_language"


def _switching_language() -> bool:
    """Whether the POST is the language menu's. Asked by the rate limit before the view runs; a
    body over MAX_CONTENT_LENGTH is no switch, and is left to the view's own reading of the form
    to answer with the 413 page (raised here, inside the limiter, it was logged as the limiter's
    own failure, with a traceback, for every such request)."""
    try:
        return SWITCH_LANGUAGE in request.form
    except RequestEntityTooLarge:
        return False


@bp.get("/")
def home():
    params = {name: request.args[name] for name in PREFILL_PARAMS if request.args.get(name)}
    return redirect(url_for("public.quote", **params))


@bp.route("/quote", methods=["GET", "POST"])
@limiter.limit(_quote_rate_limit, methods=["POST"], exempt_when=_switching_language)
def quote():
    taxonomy = intake.offered_taxonomy()
    if request.method != "POST":  # GET, or HEAD (Flask answers it with GET's headers)
        return _empty_form(taxonomy)
    if _switching_language():
        return _render(_in_new_language(QuoteForm(taxonomy=taxonomy)))

    # Checked from the posted values: the form object is built only to show the page again.
    answers = check_answers(request.form, taxonomy)
    token = _read_token(request.form.get("form_token"))
    config = current_app.config
    problem = form_token.problem(
        token,
        now=time.time(),
        min_seconds=config["QUOTE_MIN_FILL_SECONDS"],
        max_age=config["QUOTE_FORM_MAX_AGE_SECONDS"],
    )
    if answers.valid and problem is None:
        try:
            result = intake.submit_quote(answers.to_request(token))
        except intake.IntakeRejected as rejected:
            answers.refuse(rejected.field, rejected.message)
        except intake.FormAlreadyUsed as used:
            # Sent from a page brought back after another request: a fresh key sends it.
            form = QuoteForm(taxonomy=taxonomy)
            form.form_token.data = _new_token()
            return _render(form, [used.message], status=409)
        else:
            session[THANKS_KEY] = {
                "reference": result.reference,
                "confirmation": result.confirmation_queued,
                "review": result.needs_review,
            }
            return redirect(url_for("public.thanks"), code=303)
    form = QuoteForm(taxonomy=taxonomy)
    form.show(answers)
    if problem in (form_token.TokenProblem.MISSING, form_token.TokenProblem.EXPIRED):
        form.form_token.data = _new_token()
    notices = [form_token.PROBLEM_MESSAGES[problem]] if problem else []
    return _render(form, notices, status=422)


@bp.get("/privacy")
def privacy():
    config = current_app.config
    return render_template(
        "public/privacy.html",
        updated=PRIVACY_NOTICE_UPDATED,
        contact=config["COORDINATOR_EMAIL"],
        top_n=config["ROUTING_TOP_N"],
        retention_months=config["RETENTION_CLOSED_MONTHS"],
        booked_months=config["RETENTION_BOOKED_FOLLOW_UP_MONTHS"],
        stalled_months=config["RETENTION_STALLED_MONTHS"],
        spam_days=config["RETENTION_SPAM_DAYS"],
        email_days=config["RETENTION_EMAIL_BODY_DAYS"],
    )


@bp.get("/quote/thanks")
def thanks():
    return render_template(
        "public/thanks.html",
        thanks=session.get(THANKS_KEY),
        sla_hours=current_app.config["LEAD_SLA_HOURS"],
        coordinator_email=current_app.config["COORDINATOR_EMAIL"],
    )


@bp.after_request
def _never_stored(response):
    """The form's pages carry a one-time key and the patient's answers, the thank-you page their
    reference: no cache keeps them, so Back after sending asks for a fresh form (a new key)."""
    if request.endpoint in NO_STORE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(429)
def rate_limited(error):
    response = _form_again(RATE_LIMITED, 429)
    reset_at = getattr(limiter.current_limit, "reset_at", None)
    response.headers["Retry-After"] = str(max(1, int(reset_at - time.time())) if reset_at else 60)
    return response


@bp.errorhandler(CSRFError)
def session_expired(error):
    return _form_again(SESSION_EXPIRED, 400)


@bp.errorhandler(sa.exc.OperationalError)
@bp.errorhandler(sa.exc.InterfaceError)
def database_unavailable(error):
    db.session.rollback()
    log.error("quote form: database unavailable (%s)", type(getattr(error, "orig", None) or error).__name__)
    try:
        return _form_again(DATABASE_DOWN, 503)
    except sa.exc.SQLAlchemyError:
        # Not even the treatment list can be read: the plain error page it is.
        db.session.rollback()
        title, message = MESSAGES[503]
        return render_template("errors/error.html", code=503, title=title, message=message), 503


def _form_again(message: str, status: int):
    """The form with the patient's answers and `message` at the top (any error on a POST)."""
    if request.method != "POST" or request.endpoint != "public.quote":
        title, text = MESSAGES.get(status, MESSAGES[500])
        return make_response(
            render_template("errors/error.html", code=status, title=title, message=text), status
        )
    form = QuoteForm(taxonomy=intake.offered_taxonomy())
    if _read_token(form.form_token.data) is None:
        form.form_token.data = _new_token()
    return _render(form, [message], status=status)


def _in_new_language(form: QuoteForm) -> QuoteForm:
    """The sent answers, for the page in the menu's language: a fresh key, which records the
    consent wording in that language, and the consent boxes unticked, since the patient agrees to
    the wording they read."""
    form.form_token.data = _new_token()
    form.consent_share.data = form.consent_contact.data = False
    return form


def _empty_form(taxonomy):
    """The form as a link opens it: from this process's cache unless messages wait to be shown.

    A cached page needs no form object, only the visitor's own values (building the form's
    twenty-odd fields would cost more than copying the page)."""
    if session.get("_flashes"):
        form = QuoteForm(taxonomy=taxonomy)
        form.prefill(request.args, language=page_language(), referrer=_external_referrer())
        form.form_token.data = _new_token()
        return _render(form)
    values = {"form_token": _new_token(), "referrer": clean_referrer(_external_referrer()) or ""}
    if current_app.config.get("WTF_CSRF_ENABLED", True):  # as FlaskForm decides
        values["csrf_token"] = generate_csrf()

    def render() -> str:
        form = QuoteForm(taxonomy=taxonomy)
        form.prefill(request.args, language=page_language(), referrer=None)
        form.referrer.data = HOLES["referrer"]
        form.form_token.data = HOLES["form_token"]
        if form.meta.csrf:
            form.csrf_token.current_token = HOLES["csrf_token"]
        return _page(form)

    pages = current_app.extensions.setdefault(PAGES_KEY, FormPages())
    return pages.page((page_language(), request.query_string, taxonomy), render, values)


def _render(form: QuoteForm, notices: list[str] = (), status: int = 200):
    return make_response(_page(form, notices), status)


def _page(form: QuoteForm, notices: list[str] = ()) -> str:
    return render_template(
        "public/quote.html",
        form=form,
        taxonomy=form.taxonomy,
        notices=list(notices),
        field_errors=form.field_errors(),
        consent_text=_consent_shown(form),
        countries=countries(page_language()),
        languages=languages(page_language()),
        timeframes=TIMEFRAMES,
        budgets=BUDGETS,
        contact_preferences=CONTACT_PREFERENCES,
        evidence_labels=EVIDENCE_LABELS,
        treatment_options=[
            (t.slug, f"{gettext(t.name)} ({EVIDENCE_SHORT.get(t.evidence_status, t.evidence_status)})")
            for t in form.taxonomy.treatments
        ],
        # Each condition names its treatments, so the script can offer only those that fit.
        condition_groups=[
            (
                gettext(category),
                [
                    (
                        c.slug,
                        gettext(c.name),
                        {"data-treatments": " ".join(form.taxonomy.treatments_for(c.slug))},
                    )
                    for c in conditions
                ],
            )
            for category, conditions in form.taxonomy.conditions_by_category()
        ],
        limits={"name": NAME_MAX, "email": EMAIL_MAX, "phone": PHONE_MAX, "details": DETAILS_MAX},
    )


def _new_token() -> str:
    return form_token.issue(
        current_app.config["SECRET_KEY"],
        consent_version=consent.CURRENT_VERSION,
        consent_language=consent.current(page_language()).language,
        now=time.time(),
    )


def _read_token(raw: str | None) -> form_token.FormToken | None:
    token = form_token.read(current_app.config["SECRET_KEY"], raw)
    if token is None or consent.text_for(token.consent_version, token.consent_language) is None:
        return None
    return token


def _consent_shown(form: QuoteForm) -> consent.ConsentText:
    """The wording the form's token records (what the patient agrees to), else today's."""
    token = _read_token(form.form_token.data)
    if token is None:
        return consent.current(page_language())
    return consent.text_for(token.consent_version, token.consent_language)


def _external_referrer() -> str | None:
    """Where the patient came from, unless it is this site."""
    referrer = request.referrer
    if not referrer or urlsplit(referrer).netloc == request.host:
        return None
    return referrer

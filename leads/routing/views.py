"""/p/<token>: the full request the patient agreed to share, with Accept and Decline, then the
clinic's quote (send, revise, withdraw) and, once chosen, the booking confirmation."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from wtforms import RadioField, SelectMultipleField

from leads.extensions import look_ups_first
from leads.i18n import country_name, language_name, read_page_in
from leads.intake.choices import BUDGETS, CONTACT_PREFERENCES, TIMEFRAMES, label_for
from leads.messaging.signed_links import link_problem, opened_by_a_person, protect
from leads.models import AssignmentStatus
from leads.quotes import service as quotes
from leads.quotes.forms import BookingForm, QuoteForm, WithdrawQuoteForm
from leads.routing import responses
from leads.routing.forms import AcceptForm, DeclineForm

bp = Blueprint("provider", __name__, url_prefix="/p")
protect(bp)


@bp.before_request
def _in_the_clinics_language() -> None:
    """Every page behind a clinic's link is in its notification language (English for a bad link).
    Read before the request's own unit of work, whose writes (if any) then hold the write lock
    alone."""
    with look_ups_first():
        read_page_in(responses.link_language((request.view_args or {}).get("token")))


@bp.errorhandler(responses.NotAvailable)
def _not_available(error):
    return link_problem(str(error), 410)


@bp.get("/<token>")
def show_request(token: str):
    # A mail client's or a link checker's fetch ahead of the clinic shows the page (a HEAD its
    # headers) without telling the coordinators the clinic opened it.
    responses.open_request(token, by_a_person=opened_by_a_person(request.method, request.headers))
    with look_ups_first():  # making the page only reads: no write lock held for it
        return _render(token, responses.assignment_from_token(token))


@bp.post("/<token>/accept")
def accept(token: str):
    assignment = responses.assignment_from_token(token)
    form = AcceptForm()
    if not form.validate_on_submit():
        return _render(token, assignment, accept_form=form), 400
    _flash_answer(responses.accept(assignment.id, note=form.note.data), AssignmentStatus.ACCEPTED)
    return _back_to_request(token)


@bp.post("/<token>/decline")
def decline(token: str):
    assignment = responses.assignment_from_token(token)
    form = DeclineForm()
    if not form.validate_on_submit():
        return _render(token, assignment, decline_form=form), 400
    declined = responses.decline(assignment.id, reason=form.reason.data, note=form.decline_note.data)
    # What this decline did, not a promise: no clinic is asked once another has accepted, nor
    # when none is left. A decline sent again (a double click) did nothing more to say.
    saved = None
    if declined.passed_on is not None:
        saved = (
            gettext("Your answer is saved. We have offered the request to another clinic.")
            if declined.passed_on
            else gettext("Your answer is saved. The request was not offered to another clinic.")
        )
    _flash_answer(declined.assignment, AssignmentStatus.DECLINED, saved=saved)
    return _back_to_request(token)


@bp.post("/<token>/quote")
def send_quote(token: str):
    assignment = responses.assignment_from_token(token)
    form = QuoteForm()
    if not form.validate_on_submit():
        return _render(token, assignment, quote_form=form), 400
    quote = _attempt(quotes.send_quote, assignment.id, form.to_input(), revising=form.revision.data)
    if quote is not None:
        flash(
            gettext("Your quote was sent to the patient.")
            if quote.revision == 1
            else gettext("Your revised quote was sent.")
        )
    return _back_to_request(token)


@bp.post("/<token>/quote/withdraw")
def withdraw_quote(token: str):
    assignment = responses.assignment_from_token(token)
    if WithdrawQuoteForm().validate_on_submit() and _attempt(quotes.withdraw_quote, assignment.id):
        flash(gettext("Your quote is withdrawn. The patient can no longer choose it."))
    return _back_to_request(token)


@bp.post("/<token>/booked")
def confirm_booking(token: str):
    assignment = responses.assignment_from_token(token)
    form = BookingForm()
    if not form.validate_on_submit():
        return _render(token, assignment, booking_form=form), 400
    if _attempt(quotes.confirm_booking, assignment.id, form.treatment_date.data):
        flash(gettext("Thank you: the booking is confirmed."))
    return _back_to_request(token)


def _back_to_request(token: str):
    """To the top of the clinic's page, where the result of its step comes first and is focused:
    an anchor (#quote) scrolled past it, and its fragment kept the browser from focusing it."""
    return redirect(url_for("provider.show_request", token=token), 303)


def _flash_answer(assignment, given: AssignmentStatus, *, saved: str | None = None) -> None:
    """Say whether the answer just sent is the one that stands (`saved`: what to say then): the
    first answer wins, so an Accept sent from a second tab (or by a colleague) after a Decline, or
    the other way round, changes nothing, and the clinic must not be told it was saved."""
    if assignment.status == given:
        flash(saved or gettext("Your answer is saved."))
    else:
        flash(
            gettext(
                "This request had already been answered the other way (perhaps in another tab or by a "
                "colleague), so this answer was not saved. To change the answer, write to the coordinators."
            ),
            "error",
        )


def _attempt(step, *args, **kwargs):
    """Run a quote step; a refusal is flashed as it is worded, and nothing changes."""
    try:
        return step(*args, **kwargs)
    except quotes.QuoteRefused as refused:
        flash(str(refused), "error")
        return None


def _field_errors(*forms) -> list[tuple[str, str]]:
    """(anchor, message) for each problem of the submitted form, for its error summary; a group
    of radios or boxes is reached at its first option."""
    return [
        (f"{field.id}-0" if isinstance(field, (RadioField, SelectMultipleField)) else field.id, message)
        for form in forms
        if form is not None
        for field in form
        if field.name != "csrf_token"
        for message in field.errors
    ]


def _render(token, assignment, *, accept_form=None, decline_form=None, quote_form=None, booking_form=None):
    responses.check_available(assignment)
    field_errors = _field_errors(accept_form, decline_form, quote_form, booking_form)
    answered = assignment.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.DECLINED)
    quote = assignment.quote
    if quote_form is None:
        quote_form = QuoteForm.for_quote(quote)
    return render_template(
        "provider/request.html",
        token=token,
        assignment=assignment,
        lead=assignment.lead,
        answered=answered,
        accept_form=accept_form or AcceptForm(formdata=None),
        decline_form=decline_form or DeclineForm(formdata=None),
        decline_reasons=responses.DECLINE_REASONS,
        country=country_name(assignment.lead.country),
        language=language_name(assignment.lead.preferred_language),
        answers={
            "contact_preference": label_for(CONTACT_PREFERENCES, assignment.lead.contact_preference),
            "timeframe": label_for(TIMEFRAMES, assignment.lead.timeframe),
            "budget": label_for(BUDGETS, assignment.lead.budget),
        },
        card=quotes.quote_card(quote) if quote else None,
        can_quote=quotes.sending_refusal(assignment) is None,
        evidence=quotes.quote_evidence(assignment.lead, assignment.provider),
        quote_form=quote_form,
        withdraw_form=WithdrawQuoteForm(formdata=None),
        booking_form=booking_form or BookingForm(formdata=None),
        can_book=quotes.booking_refusal(assignment) is None,
        field_errors=field_errors,
    )

"""/p/<token>: the full request the patient agreed to share, with Accept and Decline."""

from flask import Blueprint, redirect, render_template, url_for

from leads.messaging.signed_links import link_problem, protect
from leads.models import AssignmentStatus
from leads.routing import responses
from leads.routing.forms import AcceptForm, DeclineForm
from leads.routing.notification import country_name, humanise, language_name

bp = Blueprint("provider", __name__, url_prefix="/p")
protect(bp)


@bp.errorhandler(responses.NotAvailable)
def _not_available(error):
    return link_problem(str(error), 410)


@bp.get("/<token>")
def show_request(token: str):
    opened = responses.open_request(token)
    return _render(token, opened.assignment, AcceptForm(), DeclineForm())


@bp.post("/<token>/accept")
def accept(token: str):
    assignment = responses.assignment_from_token(token)
    form = AcceptForm()
    if not form.validate_on_submit():
        return _render(token, assignment, form, DeclineForm()), 400
    responses.accept(assignment.id, price_range=form.price_range.data, note=form.note.data)
    return redirect(url_for("provider.show_request", token=token), 303)


@bp.post("/<token>/decline")
def decline(token: str):
    assignment = responses.assignment_from_token(token)
    form = DeclineForm()
    if not form.validate_on_submit():
        return _render(token, assignment, AcceptForm(), form), 400
    responses.decline(assignment.id, reason=form.reason.data, note=form.decline_note.data)
    return redirect(url_for("provider.show_request", token=token), 303)


def _render(token, assignment, accept_form, decline_form):
    responses.check_available(assignment)
    answered = assignment.status in (AssignmentStatus.ACCEPTED, AssignmentStatus.DECLINED)
    return render_template(
        "provider/request.html",
        token=token,
        assignment=assignment,
        lead=assignment.lead,
        answered=answered,
        accept_form=accept_form,
        decline_form=decline_form,
        decline_reasons=responses.DECLINE_REASONS,
        country=country_name(assignment.lead.country),
        language=language_name(assignment.lead.preferred_language),
        humanise=humanise,
    )

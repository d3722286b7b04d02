"""/my-request/<token>: status in plain words, withdraw consent, ask for erasure."""

from flask import Blueprint, flash, redirect, render_template, url_for

from leads.messaging.signed_links import protect
from leads.patients import self_service
from leads.patients.forms import ErasureForm, WithdrawForm

bp = Blueprint("self_service", __name__, url_prefix="/my-request")
protect(bp)


@bp.get("/<token>")
def show(token: str):
    lead = self_service.lead_from_token(token)
    return _render(token, lead, WithdrawForm(), ErasureForm())


@bp.post("/<token>/withdraw")
def withdraw(token: str):
    lead = self_service.lead_from_token(token)
    form = WithdrawForm()
    if not form.validate_on_submit():
        return _render(token, lead, form, ErasureForm()), 400
    self_service.withdraw_consent(lead.id)
    flash("Your consent is withdrawn. We no longer share your request with any clinic.", "info")
    return redirect(url_for("self_service.show", token=token), 303)


@bp.post("/<token>/erase")
def erase(token: str):
    lead = self_service.lead_from_token(token)
    form = ErasureForm()
    if not form.validate_on_submit():
        return _render(token, lead, WithdrawForm(), form), 400
    self_service.request_erasure(lead.id)
    flash("We have your request to erase your data. A coordinator carries it out within one month.", "info")
    return redirect(url_for("self_service.show", token=token), 303)


def _render(token, lead, withdraw_form, erasure_form):
    title, explanation = self_service.plain_status(lead)
    return render_template(
        "self_service/request.html",
        token=token,
        lead=lead,
        title=title,
        explanation=explanation,
        withdraw_form=withdraw_form,
        erasure_form=erasure_form,
    )

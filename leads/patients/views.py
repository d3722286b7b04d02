"""/my-request/<token>: status in plain words, the quotes side by side and the choice, withdraw
consent, ask for erasure."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext

from leads.i18n import isolate
from leads.intake.choices import CONTACT_PREFERENCES, label_for
from leads.messaging.signed_links import link_problem, protect
from leads.patients import self_service
from leads.patients.forms import ErasureForm, WithdrawForm
from leads.quotes import service as quotes
from leads.quotes.forms import ChoiceForm, NoneSuitForm, RenewalForm
from leads.timeutil import utcnow

bp = Blueprint("self_service", __name__, url_prefix="/my-request")
protect(bp)


@bp.errorhandler(self_service.RequestErased)
def erased(error):
    return link_problem(gettext("The personal details of this request have been erased."), 410)


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
    flash(gettext("Your consent is withdrawn. We no longer share your request with any clinic."), "info")
    return _back_to_request(token)


@bp.post("/<token>/erase")
def erase(token: str):
    lead = self_service.lead_from_token(token)
    form = ErasureForm()
    if not form.validate_on_submit():
        return _render(token, lead, WithdrawForm(), form), 400
    self_service.request_erasure(lead.id)
    flash(
        gettext("We have your request to erase your data. We carry it out within one month."),
        "info",
    )
    return _back_to_request(token)


@bp.get("/<token>/quotes/<int:quote_id>/choose")
def confirm_choice(token: str, quote_id: int):
    lead = self_service.lead_from_token(token)
    quote = quotes.quote_for_patient(lead, quote_id)
    refusal = (
        quotes.choice_refusal(quote, lead, utcnow())
        if quote
        else gettext("This quote is not part of your request.")
    )
    if refusal:
        flash(refusal, "error")
        return _back_to_request(token)
    return render_template(
        "self_service/choose.html",
        token=token,
        lead=lead,
        card=quotes.quote_card(quote),
        form=ChoiceForm(formdata=None, revision=quote.revision),
        contact_label=label_for(CONTACT_PREFERENCES, lead.contact_preference),
    )


@bp.post("/<token>/quotes/<int:quote_id>/choose")
def choose(token: str, quote_id: int):
    lead = self_service.lead_from_token(token)
    form = ChoiceForm()
    if not form.validate_on_submit():
        # Without the revision its confirmation step showed (only a hand-made request), nothing
        # is chosen, and the patient is told so instead of landing on their page unaware.
        notice = gettext(
            "Your choice was not made: we could not tell which version of the quote you confirmed. "
            "Please choose again."
        )
        return _render(token, lead, WithdrawForm(), ErasureForm(), notices=[notice]), 400
    try:
        quote = quotes.choose_quote(lead.id, quote_id, seen_revision=form.revision.data)
    except quotes.QuoteRefused as refused:
        flash(str(refused), "error")
    else:
        flash(
            gettext(
                "Thank you. We have told %(clinic)s; they will contact you to plan the next steps.",
                clinic=isolate(quote.assignment.provider.name),
            ),
            "info",
        )
    return _back_to_request(token)


@bp.post("/<token>/quotes/<int:quote_id>/renew")
def renew(token: str, quote_id: int):
    lead = self_service.lead_from_token(token)
    if RenewalForm().validate_on_submit():
        try:
            asked = quotes.request_renewal(lead.id, quote_id)
        except quotes.QuoteRefused as refused:
            flash(str(refused), "error")
        else:
            flash(
                gettext("We have asked the clinic to renew its quote. We email you when it does.")
                if asked
                else gettext(
                    "You have already asked the clinic to renew this quote. We email you when it does."
                ),
                "info",
            )
    return _back_to_request(token)


@bp.post("/<token>/quotes/none")
def none_suit(token: str):
    lead = self_service.lead_from_token(token)
    if NoneSuitForm().validate_on_submit():
        try:
            quotes.decline_all_quotes(lead.id)
        except quotes.QuoteRefused as refused:
            flash(str(refused), "error")
        else:
            flash(
                gettext(
                    "Thank you for telling us. A coordinator will look for other clinics and write to you."
                ),
                "info",
            )
    return _back_to_request(token)


def _back_to_request(token: str):
    """To the top of the patient's page, where the result of their step is shown first: an anchor
    further down would skip it, and screen reader users would not hear it."""
    return redirect(url_for("self_service.show", token=token), 303)


def _render(token, lead, withdraw_form, erasure_form, notices=()):
    title, explanation = self_service.plain_status(lead)
    live, others = quotes.patient_quotes(lead)
    can_choose = lead.status == "quoted"
    now = utcnow()
    # Each live quote's own reason it cannot be chosen (its clinic paused), shown instead of the button.
    refusals = {card.quote.id: quotes.choice_refusal(card.quote, lead, now) for card in live if can_choose}
    return render_template(
        "self_service/request.html",
        token=token,
        lead=lead,
        title=title,
        explanation=explanation,
        withdraw_form=withdraw_form,
        erasure_form=erasure_form,
        live_quotes=live,
        other_quotes=others,
        can_choose=can_choose,
        booked_without_choice=self_service.booked_without_choice(lead),
        choice_refusals=refusals,
        none_form=NoneSuitForm(formdata=None),
        renewal_form=RenewalForm(formdata=None),
        notices=notices,
        field_errors=[
            (field.id, message)
            for form in (withdraw_form, erasure_form)
            for field in form
            if field.name != "csrf_token"
            for message in field.errors
        ],
    )

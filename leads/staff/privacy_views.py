"""Admin actions on a patient's data from the lead page: export it (right of access) and erase
it (right to erasure). Both act on every lead of the same patient; the erasure lists those leads
first and erases exactly the ones listed."""

import json

from flask import Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from leads.auth import role_required
from leads.extensions import db
from leads.models import Lead, Role, access_detail
from leads.patients import privacy
from leads.staff import access_log, bp
from leads.staff.forms import ErasureForm, PatientExportForm
from leads.staff.lead_views import render_lead

ERASURE_LIST = access_detail("listed_for_erasure")


def _lead_or_404(lead_id: int) -> Lead:
    return db.get_or_404(Lead, lead_id)


@bp.post("/leads/<int:lead_id>/privacy/export")
@role_required(Role.ADMIN)
def lead_patient_export(lead_id: int):
    lead = _lead_or_404(lead_id)
    form = PatientExportForm(prefix="export")
    if not form.validate_on_submit():
        return render_lead(lead_id, overrides={"export": form}, status=400)
    try:
        document = privacy.export_patient(lead.reference, user_id=current_user.id)
    except privacy.PatientNotFound as exc:
        db.session.rollback()
        return render_lead(lead_id, overrides={"export": form}, error=str(exc), status=409)
    body = json.dumps(document, ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="patient-data-{lead.reference}.json"',
            "Cache-Control": "no-store",
        },
    )


def _erasure_page(
    lead: Lead, form: ErasureForm | None = None, *, error: str | None = None, status: int = 200
):
    """Every request the erasure would erase (privacy.patient_leads, as the erasure itself), each
    shown one logged, and the form that erases exactly those: it carries their references."""
    if form is None:
        form = ErasureForm(formdata=None, prefix="erase")
    try:
        requests = privacy.patient_leads(lead.reference)
    except privacy.PatientNotFound as exc:
        db.session.rollback()
        requests, error, status = [], error or str(exc), 409
    for listed in requests:
        access_log.record_view(current_user.id, listed.id, detail=ERASURE_LIST)
    db.session.commit()
    # What this page lists, also in a submitted form shown again: the next click confirms this list.
    form.shown.data = " ".join(listed.reference for listed in requests)
    form.confirm.data = False
    html = render_template(
        "staff/erase_patient.html", lead=lead, requests=requests, form=form, action_error=error
    )
    return html, status


@bp.get("/leads/<int:lead_id>/privacy/erase")
@role_required(Role.ADMIN)
def lead_patient_erase_confirm(lead_id: int):
    return _erasure_page(_lead_or_404(lead_id))


def _changed(exc: privacy.PatientRequestsChanged) -> str:
    message = _(
        "The patient's requests changed after the list was shown, so nothing was erased. "
        "Check the list below, then confirm again."
    )
    if exc.added:
        message += " " + _("New since: %(references)s.", references=", ".join(exc.added))
    if exc.removed:
        message += " " + _("No longer to erase: %(references)s.", references=", ".join(exc.removed))
    return message


@bp.post("/leads/<int:lead_id>/privacy/erase")
@role_required(Role.ADMIN)
def lead_patient_erase(lead_id: int):
    lead = _lead_or_404(lead_id)
    form = ErasureForm(prefix="erase")
    if not form.validate_on_submit():
        return _erasure_page(lead, form, status=400)
    try:
        record = privacy.erase_patient(
            lead.reference, user_id=current_user.id, door=privacy.STAFF_PAGE, shown=form.shown_references
        )
    except privacy.PatientRequestsChanged as exc:
        db.session.rollback()
        return _erasure_page(lead, form, error=_changed(exc), status=409)
    except privacy.PatientNotFound:
        db.session.rollback()
        return _erasure_page(lead, form, status=409)
    flash(
        _("The patient's data is erased from %(references)s.", references=", ".join(record.references)),
        "success",
    )
    return redirect(url_for("staff.lead_detail", lead_id=lead_id))

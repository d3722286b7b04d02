"""Admin actions on a patient's data from the lead page: export it (right of access) and erase
it (right to erasure). Both act on every lead of the same patient."""

import json

from flask import Response, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from leads.auth import role_required
from leads.extensions import db
from leads.models import Lead, Role
from leads.patients import privacy
from leads.staff import bp
from leads.staff.forms import ErasureForm, PatientExportForm
from leads.staff.lead_views import render_lead


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


@bp.post("/leads/<int:lead_id>/privacy/erase")
@role_required(Role.ADMIN)
def lead_patient_erase(lead_id: int):
    lead = _lead_or_404(lead_id)
    form = ErasureForm(prefix="erase")
    if not form.validate_on_submit():
        return render_lead(lead_id, overrides={"erase": form}, status=400)
    try:
        record = privacy.erase_patient(lead.reference, user_id=current_user.id, door=privacy.STAFF_PAGE)
    except privacy.PatientNotFound as exc:
        db.session.rollback()
        return render_lead(lead_id, overrides={"erase": form}, error=str(exc), status=409)
    flash(
        _("The patient's data is erased from %(references)s.", references=", ".join(record.references)),
        "success",
    )
    return redirect(url_for("staff.lead_detail", lead_id=lead_id))

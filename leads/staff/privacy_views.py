"""Admin actions on a patient's data from the lead page: export it (right of access) and erase
it (right to erasure). Both list every lead linked to this one first: the export downloads the
ones ticked (those sent from this lead's address, unless the admin chooses otherwise), the
erasure erases exactly the ones listed. Both carry on the queue view the lead page was opened
from (`back`, only ever a queue URL, as the lead page's own actions do), in their links, their
forms and the return to the lead page."""

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
from leads.staff.lead_views import queue_back

ERASURE_LIST = access_detail("listed_for_erasure")
EXPORT_LIST = access_detail("listed_for_export")


def _lead_or_404(lead_id: int) -> Lead:
    return db.get_or_404(Lead, lead_id)


def _listed(lead: Lead, detail: str, error: str | None, status: int) -> tuple[list, str | None, int]:
    """The requests linked to `lead` (privacy.linked_requests, as the export and the erasure
    themselves find them), each logged as a view with `detail`, committed; none, with the reason
    as the page's error (409), when nothing of the patient is held."""
    try:
        requests = privacy.linked_requests(lead.reference)
    except privacy.PatientNotFound as exc:
        db.session.rollback()
        return [], error or str(exc), 409
    for listed in requests:
        access_log.record_view(current_user.id, listed.lead.id, detail=detail)
    db.session.commit()
    return requests, error, status


def _export_page(
    lead: Lead, form: PatientExportForm | None = None, *, error: str | None = None, status: int = 200
):
    """Every request linked to this one (privacy.linked_requests, as the export itself), each shown
    one logged, with how it is linked; those sent from this request's address ticked, the others
    not. The form carries the references listed: the download is of the ticked ones, refused if
    the list changed since."""
    if form is None:
        form = PatientExportForm(formdata=None, prefix="export")
    requests, error, status = _listed(lead, EXPORT_LIST, error, status)
    if form.requests.data is None:
        form.requests.data = [listed.lead.reference for listed in requests if listed.own]
    form.shown.data = " ".join(listed.lead.reference for listed in requests)
    html = render_template(
        "staff/export_patient.html",
        lead=lead,
        requests=requests,
        form=form,
        ticked=set(form.requests.data),
        action_error=error,
        back=queue_back(),
    )
    return html, status


@bp.get("/leads/<int:lead_id>/privacy/export")
@role_required(Role.ADMIN)
def lead_patient_export_confirm(lead_id: int):
    return _export_page(_lead_or_404(lead_id))


@bp.post("/leads/<int:lead_id>/privacy/export")
@role_required(Role.ADMIN)
def lead_patient_export(lead_id: int):
    lead = _lead_or_404(lead_id)
    form = PatientExportForm(prefix="export")
    if not form.validate_on_submit():
        return _export_page(lead, form, status=400)
    try:
        document = privacy.export_patient(
            lead.reference, user_id=current_user.id, chosen=form.requests.data, shown=form.shown_references
        )
    except privacy.PatientRequestsChanged as exc:
        db.session.rollback()
        message = _(
            "The patient's requests changed after the list was shown, so nothing was exported. "
            "Check the list below, then download again."
        )
        # The list as it is now, ticked afresh.
        removed = _("No longer held: %(references)s.", references=", ".join(exc.removed))
        return _export_page(lead, error=_with_changes(message, exc, removed), status=409)
    except privacy.ExportRefused as exc:
        db.session.rollback()
        return _export_page(lead, form, error=str(exc), status=400)
    except privacy.PatientNotFound:
        db.session.rollback()
        return _export_page(lead, form, status=409)
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
    """Every request the erasure would erase (privacy.linked_requests, as the erasure itself), each
    shown one logged, and the form that erases exactly those: it carries their references."""
    if form is None:
        form = ErasureForm(formdata=None, prefix="erase")
    linked, error, status = _listed(lead, ERASURE_LIST, error, status)
    requests = [listed.lead for listed in linked]
    # What this page lists, also in a submitted form shown again: the next click confirms this list.
    form.shown.data = " ".join(listed.reference for listed in requests)
    form.confirm.data = False
    html = render_template(
        "staff/erase_patient.html",
        lead=lead,
        requests=requests,
        form=form,
        action_error=error,
        back=queue_back(),
    )
    return html, status


@bp.get("/leads/<int:lead_id>/privacy/erase")
@role_required(Role.ADMIN)
def lead_patient_erase_confirm(lead_id: int):
    return _erasure_page(_lead_or_404(lead_id))


def _with_changes(message: str, exc: privacy.PatientRequestsChanged, removed: str) -> str:
    """`message`, then which requests are new since the list was shown, and `removed` (which are
    no longer held) when some are."""
    if exc.added:
        message += " " + _("New since: %(references)s.", references=", ".join(exc.added))
    if exc.removed:
        message += " " + removed
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
        message = _(
            "The patient's requests changed after the list was shown, so nothing was erased. "
            "Check the list below, then confirm again."
        )
        removed = _("No longer to erase: %(references)s.", references=", ".join(exc.removed))
        return _erasure_page(lead, form, error=_with_changes(message, exc, removed), status=409)
    except privacy.PatientNotFound:
        db.session.rollback()
        return _erasure_page(lead, form, status=409)
    except privacy.ErasureFailed:
        failed = _(
            "The erasure stopped on an error, so nothing was erased. The error is logged: try again, "
            "and tell the developers if it happens again."
        )
        return _erasure_page(lead, form, error=failed, status=409)
    flash(
        _("The patient's data is erased from %(references)s.", references=", ".join(record.references)),
        "success",
    )
    return redirect(url_for("staff.lead_detail", lead_id=lead_id, back=queue_back()))

"""The lead page and the actions on it. Every render of the page is written to the access log."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from leads.auth import staff_required
from leads.extensions import db
from leads.models import Lead, User
from leads.notes import describe_reason
from leads.staff import access_log, bp, lead_actions
from leads.staff.forms import (
    NOBODY,
    STATUS_LABELS,
    ApproveRoutingForm,
    AssignForm,
    DuplicateForm,
    LeftByErasureCheckForm,
    NoteForm,
    RerouteForm,
    ResendForm,
    SpamForm,
    StatusForm,
)
from leads.staff.lead_page import load_lead_page
from leads.workflow import REROUTABLE

FORMS = {
    "note": NoteForm,
    "status": StatusForm,
    "assign": AssignForm,
    "duplicate": DuplicateForm,
    "spam": SpamForm,
    "reroute": RerouteForm,
    "approve": ApproveRoutingForm,
    "resend": ResendForm,
    "left_by_erasure": LeftByErasureCheckForm,
}


def _posted(key: str):
    """The submitted form `key`; each form has its own prefix so ids stay unique on the page."""
    return FORMS[key](prefix=key)


def _forms(page, overrides: dict) -> dict:
    forms = {key: cls(formdata=None, prefix=key) for key, cls in FORMS.items()}
    forms["assign"].assignee.data = str(page.lead.assigned_to_id or "")
    forms.update(overrides)
    # What this page shows, also in a submitted form shown again after a refusal: the next click
    # is judged against what the coordinator sees now, not against the page they came from.
    forms["status"].current_status.data = page.lead.status
    forms["assign"].shown_assignee.data = str(page.lead.assigned_to_id or NOBODY)
    forms["reroute"].shown_offers.data = lead_actions.offers_shown(
        page.lead.status, [row.assignment.status for row in page.assignments]
    )
    # No status is preselected: a stray click must not close a lead.
    forms["status"].status.choices = [("", _("Choose a new status"))] + [
        (s, STATUS_LABELS[s]) for s in page.next_statuses
    ]
    forms["assign"].assignee.choices = [("", _("Nobody"))] + [(str(u.id), u.email) for u in page.staff]
    return forms


def render_lead(lead_id: int, *, overrides: dict | None = None, error: str | None = None, status: int = 200):
    """The lead page, with `overrides` forms (submitted ones, with their errors) and an error."""
    if db.session.get(Lead, lead_id) is None:
        abort(404)
    access_log.record_view(current_user.id, lead_id)
    db.session.commit()
    page = load_lead_page(lead_id)
    html = render_template(
        "staff/lead.html",
        page=page,
        lead=page.lead,
        forms=_forms(page, overrides or {}),
        action_error=error,
        reroutable=page.lead.status in REROUTABLE,
        status_reason=describe_reason(page.lead.status_reason) if page.lead.status_reason else None,
        back=queue_back(),
    )
    return html, status


def queue_back() -> str | None:
    """The queue view the coordinator came from (`back`, only ever a queue URL). Every action on
    the page carries it on, so that "Back to the queue" still returns to that view, filters and
    page included, after the coordinator has acted on the lead."""
    target = request.args.get("back")
    if target and target.startswith("/staff/leads") and not target.startswith("//"):
        return target
    return None


@bp.get("/leads/<int:lead_id>")
@staff_required
def lead_detail(lead_id: int):
    return render_lead(lead_id)


def _done(lead_id: int, message: str):
    """Commit and show the lead page with `message`. No anchor: a URL fragment would stop the
    browser focusing the message, which the page shows beside the timeline, where it used to jump."""
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("staff.lead_detail", lead_id=lead_id, back=queue_back()))


def _act(lead_id: int, key: str, form, action, success: str):
    """Validate `form`, run `action`, commit and redirect; else show the page with the reason."""
    if db.session.get(Lead, lead_id) is None:
        abort(404)
    if not form.validate_on_submit():
        return render_lead(lead_id, overrides={key: form}, status=400)
    try:
        result = action()
    except lead_actions.ActionError as exc:
        db.session.rollback()
        return render_lead(lead_id, overrides={key: form}, error=str(exc), status=409)
    return _done(lead_id, success(result) if callable(success) else success)


@bp.post("/leads/<int:lead_id>/notes")
@staff_required
def lead_add_note(lead_id: int):
    form = _posted("note")
    return _act(
        lead_id,
        "note",
        form,
        lambda: lead_actions.add_note(lead_id, current_user.id, form.note.data),
        lambda event: _("Note added."),
    )


@bp.post("/leads/<int:lead_id>/left-by-erasure-checked")
@staff_required
def lead_check_left_by_erasure(lead_id: int):
    form = _posted("left_by_erasure")
    return _act(
        lead_id,
        "left_by_erasure",
        form,
        lambda: lead_actions.check_left_by_erasure(lead_id, current_user.id),
        _("Check recorded: the request leaves the list of those an erasure left."),
    )


@bp.post("/leads/<int:lead_id>/status")
@staff_required
def lead_change_status(lead_id: int):
    form = _posted("status")
    return _act(
        lead_id,
        "status",
        form,
        lambda: lead_actions.change_status(
            lead_id,
            current_user.id,
            form.status.data,
            expected_current=form.current_status.data or None,
            note=(form.note.data or "").strip() or None,
        ),
        lambda event: _("Status changed to %(status)s.", status=STATUS_LABELS[event.to_status]),
    )


@bp.post("/leads/<int:lead_id>/assign")
@staff_required
def lead_assign(lead_id: int):
    form = _posted("assign")
    active = db.session.execute(sa.select(User.id, User.email).filter_by(active=True).order_by(User.email))
    form.assignee.choices = [("", _("Nobody"))] + [(str(i), email) for i, email in active]
    return _act(
        lead_id,
        "assign",
        form,
        lambda: lead_actions.assign_coordinator(
            lead_id,
            current_user.id,
            int(form.assignee.data) if form.assignee.data else None,
            shown_assignee_id=form.shown_assignee_id,
        ),
        lambda event: (
            _("Assigned to %(email)s.", email=event.lead.assigned_to.email)
            if event.lead.assigned_to
            else _("Unassigned.")
        ),
    )


@bp.post("/leads/<int:lead_id>/duplicate")
@staff_required
def lead_mark_duplicate(lead_id: int):
    form = _posted("duplicate")
    return _act(
        lead_id,
        "duplicate",
        form,
        lambda: lead_actions.mark_duplicate(
            lead_id, current_user.id, form.original_reference.data, form.note.data
        ),
        lambda original: _("Marked as a duplicate of %(reference)s.", reference=original.reference),
    )


@bp.post("/leads/<int:lead_id>/spam")
@staff_required
def lead_mark_spam(lead_id: int):
    form = _posted("spam")
    return _act(
        lead_id,
        "spam",
        form,
        lambda: lead_actions.mark_spam(lead_id, current_user.id, form.note.data),
        lambda event: _("Marked as spam."),
    )


@bp.post("/leads/<int:lead_id>/emails/<int:email_id>/resend")
@staff_required
def lead_resend_email(lead_id: int, email_id: int):
    form = _posted("resend")
    return _act(
        lead_id,
        "resend",
        form,
        lambda: lead_actions.resend_email(lead_id, email_id, current_user.id),
        lambda address: _("The email to %(address)s is queued again.", address=address),
    )


@bp.post("/leads/<int:lead_id>/approve-routing")
@staff_required
def lead_approve_routing(lead_id: int):
    form = _posted("approve")
    return _act(
        lead_id,
        "approve",
        form,
        lambda: lead_actions.approve_routing(lead_id, current_user.id),
        lambda outcome: (
            _("Routing approved: the lead went to the matching providers.")
            if outcome == "routed"
            else _("Routing approved, but no provider fits: the lead is now unroutable.")
        ),
    )


@bp.post("/leads/<int:lead_id>/reroute")
@staff_required
def lead_reroute(lead_id: int):
    form = _posted("reroute")

    def message(assignments) -> str:
        if not assignments:
            return _("No other provider fits this lead.")
        return _("Offered to more providers: %(count)d.", count=len(assignments))

    return _act(
        lead_id,
        "reroute",
        form,
        lambda: lead_actions.reroute(
            lead_id, current_user.id, form.reason.data, shown_offers=form.shown_offers.data
        ),
        message,
    )

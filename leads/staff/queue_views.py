"""The queue at /staff/leads and its CSV export. The filter state lives in the query string."""

from functools import cache

import sqlalchemy as sa
from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from leads.auth import role_required, staff_required
from leads.extensions import db
from leads.models import Provider, Role, User
from leads.patients.privacy import erasure_due_at
from leads.staff import bp, export, queue
from leads.staff.forms import STATUS_LABELS, ExportForm, QueueFilterForm, country_choices
from leads.timeutil import utcnow

FILTER_FIELDS = (
    "q", "status", "treatment", "condition", "provider", "country", "source", "assigned",
    "created_from", "created_to", "overdue", "erasure",
)  # fmt: skip


@cache
def _countries() -> list[tuple[str, str]]:
    return country_choices()


def build_filter_form(formdata: MultiDict) -> QueueFilterForm:
    """The filter form bound to `formdata`, its choices read from the database."""
    form = QueueFilterForm(formdata=formdata)
    treatments, conditions = queue.taxonomy_choices()
    form.status.choices = [("", "Any status"), ("open", "Any open status")] + list(STATUS_LABELS.items())
    form.treatment.choices = [("", "Any treatment")] + [(t.slug, t.name) for t in treatments]
    form.condition.choices = [("", "Any condition")] + [(c.slug, c.name) for c in conditions]
    providers = db.session.execute(sa.select(Provider.id, Provider.name).order_by(Provider.name)).all()
    form.provider.choices = [("", "Any provider")] + [(str(i), name) for i, name in providers]
    form.country.choices = _countries()
    staff = db.session.execute(sa.select(User.id, User.email).order_by(User.email)).all()
    form.assigned.choices = [("", "Anyone or nobody"), ("mine", "Me"), ("unassigned", "Nobody")] + [
        (str(i), email) for i, email in staff
    ]
    form.taxonomy = ({t.slug: t.id for t in treatments}, {c.slug: c.id for c in conditions})
    return form


def filters_from_form(form: QueueFilterForm, user_id: int) -> queue.QueueFilters:
    treatment_ids, condition_ids = form.taxonomy
    return queue.QueueFilters(
        q=(form.q.data or "").strip(),
        status=form.status.data or "",
        treatment_id=treatment_ids.get(form.treatment.data),
        condition_id=condition_ids.get(form.condition.data),
        provider_id=int(form.provider.data) if form.provider.data else None,
        country=form.country.data or "",
        source=(form.source.data or "").strip(),
        assigned=form.assigned.data or "",
        created_from=form.created_from.data,
        created_to=form.created_to.data,
        overdue=bool(form.overdue.data),
        erasure=bool(form.erasure.data),
        user_id=user_id,
    )


def active_filter_args(source: MultiDict) -> dict[str, str]:
    """The non-empty filter parameters, to carry into page links and the export."""
    return {key: source.get(key, "") for key in FILTER_FIELDS if source.get(key, "").strip()}


@bp.get("/")
@staff_required
def index():
    return redirect(url_for("staff.queue_page"))


@bp.get("/leads")
@staff_required
def queue_page():
    form = build_filter_form(request.args)
    args = active_filter_args(request.args)
    page, total, notice = queue.QueuePage(), None, None
    if form.validate():
        filters = filters_from_form(form, current_user.id)
        after = queue.Cursor.decode(request.args.get("after"))
        before = queue.Cursor.decode(request.args.get("before"))
        if (request.args.get("after") and after is None) or (request.args.get("before") and before is None):
            notice = "That page link was not valid, so this is the first page."
        limit = current_app.config["STAFF_PAGE_SIZE"]
        now = utcnow()
        where = queue.filter_conditions(filters, now)  # built once: a search may scan the table
        page = queue.fetch_page(filters, limit=limit, after=after, before=before, now=now, where=where)
        if not page.rows and before is not None:
            page = queue.fetch_page(filters, limit=limit, now=now, where=where)
        total = queue.bounded_count(where)
    return render_template(
        "staff/queue.html",
        form=form,
        page=page,
        total=total,
        ceiling=queue.COUNT_CEILING,
        notice=notice,
        args=args,
        counts=queue.attention_counts(current_user.id),
        export_form=ExportForm() if current_user.is_admin else None,
        filtered=bool(args),
        now=utcnow(),
        erasure_due_at=erasure_due_at,
    )


@bp.post("/leads/export")
@role_required(Role.ADMIN)
def export_csv():
    """The current filtered list as CSV; free-text medical details only when asked for."""
    export_form = ExportForm()
    form = build_filter_form(request.form)
    args = active_filter_args(request.form)
    if not export_form.validate() or not form.validate():
        flash("The export could not start: check the filters and try again.", "error")
        return redirect(url_for("staff.queue_page", **args))
    filters = filters_from_form(form, current_user.id)
    include_details = bool(export_form.include_details.data)
    summary = ", ".join(f"{k}={'(search)' if k == 'q' else v}" for k, v in args.items())
    try:
        export.record_export(
            filters,
            user_id=current_user.id,
            include_details=include_details,
            summary=summary,
            limit=current_app.config["EXPORT_MAX_ROWS"],
        )
    except export.ExportTooLarge as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.queue_page", **args))
    db.session.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(export.csv_chunks(filters, include_details)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="leads-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )

"""The queue at /staff/leads and its CSV export.

Filters live in the query string, so a view can be bookmarked, but a search term never does: it
names patients, and URLs end up in access logs, proxies and browser history. The search form is
POSTed; the term is kept in the signed session under a short-lived random id, and the URL carries
only `search=<id>`.
"""

import secrets
import time

import sqlalchemy as sa
from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from leads.auth import role_required, staff_required
from leads.extensions import db
from leads.models import Provider, Role, User
from leads.patients.privacy import erasure_due_at
from leads.staff import access_log, bp, export, queue
from leads.staff.forms import STATUS_LABELS, ExportForm, QueueFilterForm, country_choices
from leads.timeutil import utcnow

FILTER_FIELDS = (
    "q", "status", "treatment", "condition", "provider", "country", "source", "assigned",
    "created_from", "created_to", "overdue", "erasure", "closing", "left_by_erasure",
)  # fmt: skip


def build_filter_form(formdata: MultiDict) -> QueueFilterForm:
    """The filter form bound to `formdata`, its choices read from the database."""
    form = QueueFilterForm(formdata=formdata)
    treatments, conditions = queue.taxonomy_choices()
    form.status.choices = [("", _("Any status")), ("open", _("Any open status"))] + list(
        STATUS_LABELS.items()
    )
    form.treatment.choices = [("", _("Any treatment"))] + [(t.slug, _(t.name)) for t in treatments]
    form.condition.choices = [("", _("Any condition"))] + [(c.slug, _(c.name)) for c in conditions]
    providers = db.session.execute(sa.select(Provider.id, Provider.name).order_by(Provider.name)).all()
    form.provider.choices = [("", _("Any provider"))] + [(str(i), name) for i, name in providers]
    form.country.choices = country_choices()
    staff = db.session.execute(sa.select(User.id, User.email).order_by(User.email)).all()
    form.assigned.choices = [("", _("Anyone or nobody")), ("mine", _("Me")), ("unassigned", _("Nobody"))] + [
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
        closing=bool(form.closing.data),
        left_by_erasure=bool(form.left_by_erasure.data),
        user_id=user_id,
    )


def active_filter_args(source: MultiDict) -> dict[str, str]:
    """The non-empty filter parameters, the search term included."""
    return {key: source.get(key, "") for key in FILTER_FIELDS if source.get(key, "").strip()}


SEARCHES = "queue_searches"
SEARCH_MAX_AGE_SECONDS = 3600
SEARCHES_KEPT = 10


def remember_search(term: str) -> str:
    """Keep `term` in the session; the opaque id that names it."""
    now = int(time.time())
    kept = {
        key: value
        for key, value in (session.get(SEARCHES) or {}).items()
        if isinstance(value, list) and len(value) == 2 and now - value[1] <= SEARCH_MAX_AGE_SECONDS
    }
    search_id = secrets.token_urlsafe(9)
    kept[search_id] = [term, now]
    session[SEARCHES] = dict(sorted(kept.items(), key=lambda item: item[1][1])[-SEARCHES_KEPT:])
    return search_id


def recall_search(search_id: str) -> str | None:
    entry = (session.get(SEARCHES) or {}).get(search_id)
    if not isinstance(entry, list) or len(entry) != 2 or time.time() - entry[1] > SEARCH_MAX_AGE_SECONDS:
        return None
    return entry[0]


def with_search_term(source: MultiDict) -> tuple[MultiDict, str | None, str | None]:
    """The filters of `source` with the term its `search` id names put back: (filters, id, notice)."""
    filters = MultiDict(source)
    search_id = filters.pop("search", "") or None
    filters.pop("q", None)
    if search_id is None:
        return filters, None, None
    term = recall_search(search_id)
    if term is None:
        return filters, None, _("That search has expired, so it is left out: search again.")
    filters["q"] = term
    return filters, search_id, None


def link_args(filters: MultiDict, search_id: str | None) -> dict[str, str]:
    """What page links carry: the filters, and the search only by its id."""
    args = {key: value for key, value in active_filter_args(filters).items() if key != "q"}
    if search_id and filters.get("q", "").strip():
        args["search"] = search_id
    return args


def _queue_url(source: MultiDict) -> str:
    args = {key: value for key, value in active_filter_args(source).items() if key != "q"}
    term = source.get("q", "").strip()
    if term:
        args["search"] = remember_search(term[:200])
    return url_for("staff.queue_page", **args)


@bp.post("/leads")
@staff_required
def queue_search():
    """The filter form: the search term goes into the session, the browser to the queue."""
    return redirect(_queue_url(request.form), code=303)


def _summary(filters: MultiDict) -> str:
    """The filters for the access log as the URL names them, but the search: the log says only
    that there was one, never its term."""
    return ", ".join(f"{k}={v}" for k, v in active_filter_args(filters).items() if k != "q")


@bp.get("/")
@staff_required
def index():
    return redirect(url_for("staff.queue_page"))


@bp.get("/leads")
@staff_required
def queue_page():
    if request.args.get("q", "").strip():  # an old link with the term in it: move it out of the URL
        return redirect(_queue_url(request.args), code=303)
    formdata, search_id, notice = with_search_term(request.args)
    form = build_filter_form(formdata)
    args = link_args(formdata, search_id)
    page, total = queue.QueuePage(), None
    if form.validate():
        filters = filters_from_form(form, current_user.id)
        after = queue.Cursor.decode(request.args.get("after"))
        before = queue.Cursor.decode(request.args.get("before"))
        if (request.args.get("after") and after is None) or (request.args.get("before") and before is None):
            notice = _("That page link was not valid, so this is the first page.")
        limit = current_app.config["STAFF_PAGE_SIZE"]
        now = utcnow()
        where = queue.filter_conditions(filters, now)  # built once: a search may scan the table
        page = queue.fetch_page(filters, limit=limit, after=after, before=before, now=now, where=where)
        if not page.rows and before is not None:
            page = queue.fetch_page(filters, limit=limit, now=now, where=where)
        queue.with_sla_clocks(page)
        total = queue.bounded_count(where)
        access_log.record_queue_view(
            current_user.id,
            filters=_summary(formdata),
            listed=[row.lead.id for row in page.rows],
            searched=bool(filters.q),
        )
        db.session.commit()
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
    formdata, search_id, expired = with_search_term(request.form)
    if request.form.get("q", "").strip():
        formdata["q"] = request.form["q"]
    elif expired:
        # Without its term the export would hold every lead the other filters allow, not the
        # search result the page showed: refused, whatever else the form carries.
        flash(
            _("That search has expired, so nothing was exported. Search again, then download the CSV."),
            "error",
        )
        return redirect(url_for("staff.queue_page", **link_args(formdata, None)))
    form = build_filter_form(formdata)
    args = link_args(formdata, search_id)
    filters_valid = form.validate()
    if not export_form.validate() or not filters_valid:
        if filters_valid:
            # Bad filters are explained by the queue page's own error summary, focused as it opens:
            # a second focused box would compete with it.
            flash(_("The export could not start: check the filters and try again."), "error")
        return redirect(url_for("staff.queue_page", **args))
    filters = filters_from_form(form, current_user.id)
    include_details = bool(export_form.include_details.data)
    summary = _summary(formdata)
    try:
        exported = export.record_export(
            filters,
            user_id=current_user.id,
            include_details=include_details,
            summary=summary,
            searched=bool(filters.q),
            limit=current_app.config["EXPORT_MAX_ROWS"],
        )
    except export.ExportTooLarge as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.queue_page", **args))
    db.session.commit()
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(export.csv_chunks(filters, include_details, exported)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="leads-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )

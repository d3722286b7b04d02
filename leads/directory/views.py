"""Admin pages for the provider directory and the treatment taxonomy (admin role only)."""

import sqlalchemy as sa
from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from leads.auth import role_required
from leads.directory import csv_io, service, taxonomy, validation
from leads.directory.forms import (
    EVIDENCE_LABELS,
    ActionForm,
    ConditionForm,
    ImportForm,
    PauseForm,
    TreatmentForm,
    condition_choices,
    provider_form,
)
from leads.extensions import db
from leads.models import AddressBounce, Condition, Provider, Role, Treatment
from leads.routing import bounces
from leads.routing.responses import STATS_WINDOW
from leads.timeutil import utcnow
from leads.workdays import danish_date

bp = Blueprint("directory", __name__, url_prefix="/staff/admin")
admin_required = role_required(Role.ADMIN)


def _add_errors(form, errors: dict[str, str]) -> None:
    """Show service errors next to their fields; errors without a field go to the summary."""
    for name, message in errors.items():
        field = form._fields.get(name)
        group = getattr(form, f"{name}_errors", None)
        if field is not None:
            field.errors = [*field.errors, message]
        elif isinstance(group, list):
            group.append(message)
        else:
            form.form_errors.append(message)


@bp.get("/providers")
@admin_required
def providers():
    return render_template(
        "directory/providers.html",
        providers=service.list_providers(),
        load=service.weekly_load(),
        status_label=service.status_label,
        is_paused=service.is_paused,
        bounced=bounces.flags_by_provider(),
        now=utcnow(),
        stats_window=STATS_WINDOW,
        evidence_labels=EVIDENCE_LABELS,
    )


@bp.route("/providers/new", methods=["GET", "POST"])
@admin_required
def new_provider():
    return _provider_page(None)


@bp.route("/providers/<int:provider_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_provider(provider_id: int):
    return _provider_page(db.get_or_404(Provider, provider_id))


def _provider_page(provider: Provider | None):
    known = validation.SlugIndex.load()
    form = provider_form(list(known.treatments.values()), list(known.conditions.values()), provider)
    if form.validate_on_submit():
        try:
            saved = service.save_provider(provider, validation.clean_provider(form.to_data(), known))
        except validation.InvalidFields as exc:
            db.session.rollback()
            _add_errors(form, exc.errors)
        else:
            db.session.commit()
            flash(_("Saved %(name)s.", name=saved.name), "info")
            return redirect(url_for("directory.providers"))
    return render_template("directory/provider_form.html", form=form, provider=provider)


@bp.route("/providers/<int:provider_id>/pause", methods=["GET", "POST"])
@admin_required
def pause_provider(provider_id: int):
    provider = db.get_or_404(Provider, provider_id)
    form = PauseForm()
    if form.validate_on_submit():
        today = danish_date(utcnow())
        if form.until.data is not None and form.until.data <= today:
            form.until.errors = [_("The date the provider gets leads again must be in the future")]
        else:
            service.pause_provider(provider, form.until.data)
            db.session.commit()
            flash(
                _(
                    "%(provider)s: %(status)s. It gets no new leads meanwhile.",
                    provider=provider.name,
                    status=service.status_label(provider),
                ),
                "info",
            )
            return redirect(url_for("directory.providers"))
    return render_template("directory/provider_pause.html", form=form, provider=provider)


@bp.post("/providers/<int:provider_id>/bounces/<int:bounce_id>/confirm")
@admin_required
def confirm_address(provider_id: int, bounce_id: int):
    bounce = db.first_or_404(sa.select(AddressBounce).filter_by(id=bounce_id, provider_id=provider_id))
    if ActionForm().validate_on_submit():
        address = bounce.address
        bounces.confirm_address(bounce)
        db.session.commit()
        flash(_("%(address)s is no longer flagged.", address=address), "info")
    else:
        flash(_("That did not work: the page had expired. Please try again."), "error")
    return redirect(url_for("directory.providers"))


@bp.post("/providers/<int:provider_id>/reactivate")
@admin_required
def reactivate_provider(provider_id: int):
    provider = db.get_or_404(Provider, provider_id)
    if ActionForm().validate_on_submit():
        service.reactivate_provider(provider)
        db.session.commit()
        flash(_("%(provider)s is active again and gets new leads.", provider=provider.name), "info")
    else:
        flash(_("That did not work: the page had expired. Please try again."), "error")
    return redirect(url_for("directory.providers"))


@bp.route("/providers/import", methods=["GET", "POST"])
@admin_required
def import_providers():
    form = ImportForm()
    problems: list[csv_io.LineError] = []
    if form.validate_on_submit():
        try:
            report = csv_io.import_providers(form.file.data.read(csv_io.MAX_BYTES + 1))
        except csv_io.ImportFailed as exc:
            db.session.rollback()
            problems = exc.errors
        else:
            db.session.commit()
            flash(
                _(
                    "Imported %(total)s providers (%(created)s new, %(updated)s updated).",
                    total=report.total,
                    created=report.created,
                    updated=report.updated,
                ),
                "info",
            )
            return redirect(url_for("directory.providers"))
    return render_template(
        "directory/provider_import.html", form=form, problems=problems, columns=csv_io.COLUMNS
    )


@bp.get("/providers/export.csv")
@admin_required
def export_providers():
    return Response(
        csv_io.export_providers(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="providers.csv"'},
    )


@bp.get("/taxonomy")
@admin_required
def taxonomy_page():
    return render_template(
        "directory/taxonomy.html",
        treatments=taxonomy.treatments(),
        conditions=taxonomy.conditions(),
        evidence_labels=EVIDENCE_LABELS,
    )


@bp.route("/taxonomy/treatments/new", methods=["GET", "POST"])
@admin_required
def new_treatment():
    return _treatment_page(None)


@bp.route("/taxonomy/treatments/<int:treatment_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_treatment(treatment_id: int):
    return _treatment_page(db.get_or_404(Treatment, treatment_id))


def _treatment_page(treatment: Treatment | None):
    form = TreatmentForm(obj=treatment)
    form.conditions.choices = condition_choices(taxonomy.conditions())
    if treatment is not None:
        form.slug.data = treatment.slug  # fixed once created
        if not form.is_submitted():
            form.conditions.data = [c.slug for c in treatment.conditions]
    if form.validate_on_submit():
        data = taxonomy.TreatmentData(
            slug=form.slug.data,
            name=form.name.data,
            description=form.description.data or "",
            evidence_status=form.evidence_status.data,
            requires_review=form.requires_review.data,
            active=form.active.data,
            conditions=list(form.conditions.data or []),
        )
        try:
            saved = taxonomy.save_treatment(treatment, data)
        except validation.InvalidFields as exc:
            db.session.rollback()
            _add_errors(form, exc.errors)
        else:
            db.session.commit()
            flash(_("Saved the treatment %(name)s.", name=saved.name), "info")
            return redirect(url_for("directory.taxonomy_page"))
    return render_template("directory/treatment_form.html", form=form, treatment=treatment)


@bp.route("/taxonomy/conditions/new", methods=["GET", "POST"])
@admin_required
def new_condition():
    return _condition_page(None)


@bp.route("/taxonomy/conditions/<int:condition_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_condition(condition_id: int):
    return _condition_page(db.get_or_404(Condition, condition_id))


def _condition_page(condition: Condition | None):
    form = ConditionForm(obj=condition)
    if condition is not None:
        form.slug.data = condition.slug
    if form.validate_on_submit():
        data = taxonomy.ConditionData(
            slug=form.slug.data, name=form.name.data, category=form.category.data, active=form.active.data
        )
        try:
            saved = taxonomy.save_condition(condition, data)
        except validation.InvalidFields as exc:
            db.session.rollback()
            _add_errors(form, exc.errors)
        else:
            db.session.commit()
            flash(_("Saved the condition %(name)s.", name=saved.name), "info")
            return redirect(url_for("directory.taxonomy_page"))
    return render_template("directory/condition_form.html", form=form, condition=condition)

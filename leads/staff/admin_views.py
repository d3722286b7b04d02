"""Admin pages: staff accounts at /staff/admin/users and the access log."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from leads.auth import accounts, role_required
from leads.extensions import db
from leads.ids import id_from
from leads.models import Role, User, find_by_reference
from leads.staff import access_log, bp, user_admin
from leads.staff.forms import AccessLogFilterForm, NewUserForm, ResetPasswordForm, UserActiveForm
from leads.staff.labels import label
from leads.timeutil import utcnow

admin_only = role_required(Role.ADMIN)


def _users_page(new_form=None, reset_forms=None, status=200):
    return render_template(
        "staff/users.html",
        users=user_admin.list_users(),
        new_form=new_form or NewUserForm(formdata=None),
        reset_forms=reset_forms or {},
        reset_form=ResetPasswordForm(formdata=None),
        active_form=UserActiveForm(formdata=None),
        now=utcnow(),
    ), status


@bp.get("/admin/users")
@admin_only
def users():
    return _users_page()


@bp.post("/admin/users")
@admin_only
def users_create():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.email.data, form.password.data, form.role.data, temporary=True)
            db.session.commit()
        except accounts.AccountError as exc:
            db.session.rollback()
            if isinstance(exc, accounts.AddressError):
                form.email.errors = [str(exc)]
            else:
                form.password.errors = [str(exc)]
        else:
            flash(
                _(
                    "Created %(role)s %(email)s. Give them the temporary password in person: they "
                    "choose their own at their first sign-in.",
                    role=label(user.role, "role").lower(),
                    email=user.email,
                ),
                "success",
            )
            return redirect(url_for("staff.users"))
    return _users_page(new_form=form, status=400)


def _user_or_404(user_id: int) -> User:
    return db.session.get(User, user_id) or abort(404)


@bp.post("/admin/users/<int:user_id>/active")
@admin_only
def users_set_active(user_id: int):
    user = _user_or_404(user_id)
    form = UserActiveForm()
    make_active = request.form.get("active") == "1"
    if not form.validate_on_submit():
        abort(400)
    try:
        user_admin.set_active(user, make_active, acting_user_id=current_user.id)
    except accounts.AccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        if make_active:
            flash(_("%(email)s is active again.", email=user.email), "success")
        else:
            flash(_("%(email)s is deactivated.", email=user.email), "success")
    return redirect(url_for("staff.users"))


@bp.post("/admin/users/<int:user_id>/password")
@admin_only
def users_reset_password(user_id: int):
    user = _user_or_404(user_id)
    form = ResetPasswordForm().for_user(user.id, user.email)
    if form.validate_on_submit():
        try:
            user_admin.reset_password(user, form.password.data, acting_user_id=current_user.id)
        except user_admin.OwnAccount as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for("staff.change_password"))
        except accounts.AccountError as exc:  # a common or guessable password
            db.session.rollback()
            form.password.errors = [str(exc)]
        else:
            db.session.commit()
            flash(
                _(
                    "New password set for %(email)s; any lockout is lifted. Give it to them in person: "
                    "they choose their own at their next sign-in.",
                    email=user.email,
                ),
                "success",
            )
            return redirect(url_for("staff.users"))
    return _users_page(reset_forms={user.id: form}, status=400)


@bp.get("/admin/access-log")
@admin_only
def access_log_page():
    form = AccessLogFilterForm(formdata=request.args)
    user_id = lead_id = page = None
    form.validate()
    email = (form.user.data or "").strip()
    reference = (form.lead.data or "").strip()
    # Each filter is looked up once it is well formed; one that names nobody says so beside it.
    if email and not form.user.errors:
        user_id = db.session.scalar(sa.select(User.id).filter_by(email=email.lower()))
        if user_id is None:
            form.user.errors.append(_("No staff account has the address %(email)s", email=email))
    if reference and not form.lead.errors:
        lead = find_by_reference(reference)
        lead_id = lead.id if lead else None
        if lead is None:
            form.lead.errors.append(_("No request has the reference '%(reference)s'.", reference=reference))
    failed = bool(form.user.errors or form.lead.errors or form.action.errors)
    if not failed:
        # The "Older entries" link names an entry id; anything else, or an id no row can have, is page one.
        before_id = id_from(request.args.get("before", ""))
        page = access_log.recent(user_id=user_id, lead_id=lead_id, action=form.action.data, before=before_id)
    filters = {"user": email, "lead": reference, "action": "" if failed else form.action.data}
    return render_template(
        "staff/access_log.html",
        form=form,
        page=page,
        filters={key: value for key, value in filters.items() if value},
        action_labels=access_log.ACTION_LABELS,
        who=access_log.who,
        describe=access_log.describe,
    ), (400 if failed else 200)

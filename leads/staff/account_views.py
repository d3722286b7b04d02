"""A staff member's own account: change password."""

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from leads.auth import staff_required
from leads.auth.accounts import AccountError
from leads.extensions import db
from leads.staff import bp, user_admin
from leads.staff.forms import ChangePasswordForm


@bp.route("/account/password", methods=["GET", "POST"])
@staff_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user_admin.change_own_password(current_user, form.current_password.data, form.new_password.data)
        except user_admin.WrongCurrentPassword as exc:
            db.session.rollback()
            form.current_password.errors = [str(exc)]
        except AccountError as exc:
            db.session.rollback()
            form.new_password.errors = [str(exc)]
        else:
            db.session.commit()
            flash("Your password is changed.", "success")
            return redirect(url_for("staff.queue_page"))
    status = 400 if form.errors else 200
    return render_template("staff/account_password.html", form=form), status

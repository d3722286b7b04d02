"""A staff member's own account: settings (time zone, language), change password."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext
from flask_login import current_user

from leads.auth import accounts, devices, sessions, staff_required
from leads.auth.accounts import AccountError
from leads.extensions import client_key, db, limiter
from leads.staff import bp, user_admin
from leads.staff.forms import AccountSettingsForm, ChangePasswordForm


def _per_account() -> str:
    """Guesses at the current password count per account, from however many addresses."""
    return f"password-change:{current_user.email}" if current_user.is_authenticated else "password-change"


@bp.route("/account/settings", methods=["GET", "POST"])
@staff_required
def account_settings():
    # The saved settings fill the form; a POST is judged on what it sends alone.
    form = AccountSettingsForm(obj=current_user if request.method == "GET" else None)
    if form.validate_on_submit():
        user_admin.change_own_settings(
            current_user, time_zone=form.time_zone.data, language=form.language.data
        )
        db.session.commit()
        with force_locale(current_user.language):  # the confirmation in the language just chosen
            flash(
                gettext("Your settings are saved: times are shown in %(zone)s.", zone=form.time_zone.data),
                "success",
            )
        return redirect(url_for("staff.account_settings"))
    status = 400 if form.errors else 200
    return render_template("staff/account_settings.html", form=form), status


@bp.route("/account/password", methods=["GET", "POST"])
@staff_required
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], key_func=_per_account)
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user_admin.change_own_password(
                current_user,
                form.current_password.data,
                form.new_password.data,
                client=client_key(),
                cookies=request.cookies,
                **accounts.throttle_settings(),
            )
        except accounts.Locked as exc:  # nothing checked: the throttle's wait holds here too
            db.session.rollback()
            form.current_password.errors = [str(exc)]
        except accounts.WrongCurrentPassword as exc:
            db.session.commit()  # counted as a failed sign-in by the sign-in throttle
            form.current_password.errors = [str(exc)]
        except AccountError as exc:
            db.session.rollback()
            form.new_password.errors = [str(exc)]
        else:
            db.session.commit()
            user = current_user._get_current_object()
            sessions.renew_session(user)  # other sessions have ended
            flash(gettext("Your password is changed."), "success")
            response = redirect(url_for("staff.queue_page"))
            devices.remember(response, user)  # the new password ended every other browser's trust
            return response
    status = 400 if form.errors else 200
    return render_template("staff/account_password.html", form=form), status

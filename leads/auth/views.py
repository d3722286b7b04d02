"""Staff login and logout."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from leads.auth import accounts, devices, sessions
from leads.auth.forms import LoginForm
from leads.extensions import client_key, db, limiter
from leads.validators import has_control_characters

bp = Blueprint("auth", __name__, url_prefix="/staff")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a crafted `next` must not send staff elsewhere. No path here has a
    control character, and a line break would split the Location header (werkzeug refuses it)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not has_control_characters(target)
        and not urlsplit(target).netloc
    ):
        return target
    return "/staff/"


def sign_in_first():
    """Flask-Login's answer to a request without a current session (never signed in, or the
    session ended): the sign-in page, then back to the page the reader was on. A form sent after
    the session ended comes back to the page that held it (the Referer, same site only; Referrer-
    Policy same-origin sends it), not to the form's own address, which answers only POST and would
    be a 405 after signing in; what the form carried is not kept, and the message says so, as a
    problem; a page asked for gets a neutral notice."""
    if request.method in ("GET", "HEAD"):
        # Nothing went wrong (a link followed, a bookmark, a session that ended): a notice, no error.
        flash(gettext("Sign in to see that page."), "notice")
        target = request.full_path.rstrip("?")
    else:
        flash(gettext("Your session expired, so that was not saved. Sign in, then do it again."), "error")
        target = _same_site_path(request.referrer) or "/staff/"
    return redirect(url_for("auth.login", next=target))


def _same_site_path(address: str | None) -> str | None:
    """The path and query of `address` when it is on this site; None otherwise."""
    if not address:
        return None
    parts = urlsplit(address)
    if parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(
            form.email.data,
            form.password.data,
            client=client_key(),
            cookies=request.cookies,
            **accounts.throttle_settings(),
        )
        db.session.commit()
        if user is not None:
            sessions.start_session(user)
            response = redirect(_safe_next(request.args.get("next")))
            devices.remember(response, user)  # this browser is trusted for the account from now on
            return response
        form.form_errors.append(
            gettext(
                "That email and password did not work, or the account is locked for a while. "
                "Try again, or ask an administrator."
            )
        )
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    sessions.end_session(current_user._get_current_object())
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("auth.login"))

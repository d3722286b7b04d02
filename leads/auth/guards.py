"""Decorators that keep staff routes behind login and role."""

from functools import wraps

from flask import abort, redirect, request, url_for
from flask_login import current_user, login_required

from leads.extensions import db
from leads.models import AccessAction, AccessLog, Role, access_detail

# The one staff page open to a user whose password must be changed (sign-out is not behind a role).
CHANGE_PASSWORD_ENDPOINT = "staff.change_password"  # noqa: S105  (an endpoint name)


def role_required(*roles: Role):
    """Allow signed-in staff with one of `roles`; others get 403, anonymous users the login page.
    A user whose password was set by an admin or the operator is sent to change it first."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.must_change_password and request.endpoint != CHANGE_PASSWORD_ENDPOINT:
                # The change page itself says why, as long as the password is a temporary one.
                return redirect(url_for(CHANGE_PASSWORD_ENDPOINT))
            if current_user.role not in roles:
                # Refused attempts are part of the access record health data calls for.
                detail = access_detail("refused", path=request.path)
                db.session.add(AccessLog(user_id=current_user.id, action=AccessAction.REFUSED, detail=detail))
                db.session.commit()
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator


staff_required = role_required(Role.ADMIN, Role.COORDINATOR)
"""Any signed-in coordinator or admin."""

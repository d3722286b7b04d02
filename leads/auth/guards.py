"""Decorators that keep staff routes behind login and role."""

from functools import wraps

from flask import abort, request
from flask_login import current_user, login_required

from leads.extensions import db
from leads.models import AccessAction, AccessLog, Role, access_detail


def role_required(*roles: Role):
    """Allow signed-in staff with one of `roles`; others get 403, anonymous users the login page."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
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

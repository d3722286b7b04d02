"""Staff sign-in: login with lockout, logout, and the role guard every staff view uses."""

from leads.auth.guards import role_required, staff_required
from leads.auth.views import bp

__all__ = ["bp", "role_required", "staff_required"]

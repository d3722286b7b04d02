"""The staff dashboard at /staff: queue, lead page, stats, export, staff admin, access log and
the development mailbox. Every view is behind `staff_required` or `role_required(Role.ADMIN)`."""

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff")

from leads.staff import (  # noqa: E402,F401  (the modules register their routes on bp)
    account_views,
    admin_views,
    filters,
    lead_views,
    mailbox_views,
    operations_views,
    privacy_views,
    queue_views,
    stats_views,
)

__all__ = ["bp"]

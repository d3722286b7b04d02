"""The operations page for admins: queues, waiting work and beat, red past a threshold.
`/readyz` stays the cheap probe for load balancers; this page is for people."""

from flask import render_template

from leads.auth import role_required
from leads.models import Role
from leads.staff import bp, operations


@bp.get("/admin/operations")
@role_required(Role.ADMIN)
def operations_page():
    return render_template("staff/operations.html", report=operations.collect())

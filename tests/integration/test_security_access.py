"""Deny by default, and CSRF on: every route in the URL map is on an explicit list; anonymous
visitors reach only the public ones, coordinators none of the admin ones (with real ids, so a 404
cannot pass for a refusal); with CSRF on, a POST without a token changes nothing."""

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Role
from tests.route_support import route_params, route_url
from tests.staff_support import signed_in_client

# Reachable without signing in (link pages are guarded by their signed token instead).
PUBLIC = {
    "static", "health.healthz", "health.readyz", "public.home", "public.quote", "public.thanks",
    "public.privacy", "auth.login", "provider.show_request", "provider.accept", "provider.decline",
    "self_service.show", "self_service.withdraw", "self_service.erase",
    "provider.send_quote", "provider.withdraw_quote", "provider.confirm_booking",
    "self_service.choose", "self_service.confirm_choice", "self_service.none_suit", "self_service.renew",
}  # fmt: skip
ADMIN = {
    "directory.confirm_address", "directory.edit_condition", "directory.edit_provider",
    "directory.edit_treatment",
    "directory.export_providers", "directory.import_providers", "directory.new_condition",
    "directory.new_provider", "directory.new_treatment", "directory.pause_provider",
    "directory.providers", "directory.reactivate_provider", "directory.taxonomy_page",
    "staff.access_log_page", "staff.export_csv", "staff.operations_page", "staff.users", "staff.users_create",
    "staff.users_reset_password", "staff.users_set_active", "staff.lead_patient_erase",
    "staff.lead_patient_erase_confirm", "staff.lead_patient_export", "staff.lead_patient_export_confirm",
}  # fmt: skip
STAFF = {
    "auth.logout", "staff.account_settings", "staff.change_password", "staff.index", "staff.lead_add_note",
    "staff.lead_approve_routing", "staff.lead_assign", "staff.lead_change_status", "staff.lead_detail",
    "staff.lead_check_left_by_erasure",
    "staff.lead_mark_duplicate", "staff.lead_mark_spam", "staff.lead_reroute", "staff.lead_resend_email",
    "staff.mailbox_list", "staff.mailbox_message", "staff.mailbox_message_html", "staff.queue_page",
    "staff.queue_search", "staff.stats_page",
}  # fmt: skip


def test_every_route_is_on_exactly_one_list(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    unlisted = endpoints - PUBLIC - ADMIN - STAFF
    assert not unlisted, f"decide whether these are public, staff or admin: {sorted(unlisted)}"
    assert not (PUBLIC & ADMIN or PUBLIC & STAFF or ADMIN & STAFF)
    assert endpoints == PUBLIC | ADMIN | STAFF, "a listed endpoint no longer exists"


@pytest.mark.parametrize(("endpoint", "method"), route_params(ADMIN | STAFF))
def test_anonymous_visitors_get_the_login_page(app, real, endpoint, method):
    response = app.test_client().open(route_url(app, endpoint, real), method=method)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


@pytest.mark.parametrize(("endpoint", "method"), route_params(ADMIN))
def test_coordinators_get_403_on_every_admin_route_that_admins_can_open(app, real, endpoint, method):
    url = route_url(app, endpoint, real)
    coordinator, _ = signed_in_client(app, Role.COORDINATOR)
    response = coordinator.open(url, method=method)
    assert response.status_code == 403
    if method == "GET":  # the same address works for an admin: the ids are real
        admin, _ = signed_in_client(app, Role.ADMIN)
        assert admin.get(url).status_code == 200


def _state() -> tuple:
    rows = []
    for table in db.metadata.sorted_tables:
        if table.name not in ("access_log", "login_throttle"):
            rows.append(sorted(map(repr, db.session.execute(sa.select(table)).all())))
    db.session.rollback()
    return tuple(rows)


@pytest.mark.parametrize(("endpoint", "method"), [p for p in route_params() if p.values[1] == "POST"])
def test_with_csrf_on_a_post_without_a_token_gets_400_and_changes_nothing(
    app, real, taxonomy, endpoint, method
):
    client, _ = signed_in_client(app, Role.ADMIN)
    url = route_url(app, endpoint, real)
    app.config["WTF_CSRF_ENABLED"] = True
    before = _state()
    response = client.post(
        url, data={"note": "x", "status": "closed_lost", "password": "p" * 20, "email": "a@b.dk"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert _state() == before

"""Every /staff route, present and future, read from the app's URL map: anonymous visitors get
the login page, coordinators cannot reach admin pages, admins are never turned away."""

import pytest

import config
from leads import create_app
from leads.models import Role
from tests.staff_support import signed_in_client

_APP = create_app(config.TestingConfig)
PUBLIC = {"auth.login"}  # the only page under /staff that anonymous visitors may see
SIGN_OUT = "auth.logout"  # needs a session, not a role
ARGUMENTS = {"int": 999_999, "default": "no-such-message.eml"}


def _url(rule) -> str:
    values = {
        name: ARGUMENTS["int"] if "Integer" in type(conv).__name__ else ARGUMENTS["default"]
        for name, conv in rule._converters.items()
    }
    return rule.build(values, append_unknown=False)[1]


def _cases(*, admin_only: bool = False):
    cases = []
    for rule in sorted(_APP.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/staff") or rule.endpoint in PUBLIC:
            continue
        view = _APP.view_functions[rule.endpoint]
        is_admin = rule.rule.startswith("/staff/admin/") or getattr(view, "required_roles", None) == (
            Role.ADMIN,
        )
        if admin_only and not is_admin:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            cases.append(pytest.param(method, _url(rule), rule.endpoint, id=f"{method} {rule.rule}"))
    return cases


STAFF_CASES = _cases()
ADMIN_CASES = _cases(admin_only=True)


def test_the_url_map_has_the_dashboard_routes():
    endpoints = {case.values[2] for case in STAFF_CASES}
    assert {"staff.queue_page", "staff.lead_detail", "staff.stats_page", "staff.export_csv"} <= endpoints
    assert {"staff.users", "staff.access_log_page"} <= {case.values[2] for case in ADMIN_CASES}


@pytest.mark.parametrize(("method", "url", "endpoint"), STAFF_CASES)
def test_every_staff_route_is_behind_a_role_guard(method, url, endpoint):
    view = _APP.view_functions[endpoint]
    if endpoint == SIGN_OUT:
        assert getattr(view, "__wrapped__", None) is not None, "sign-out must be behind login_required"
        return
    assert getattr(view, "required_roles", None), f"{endpoint} is not decorated with role_required"


@pytest.mark.parametrize(("method", "url", "endpoint"), STAFF_CASES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, method, url, endpoint):
    response = client.open(url, method=method)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login?next=")


@pytest.mark.parametrize(("method", "url", "endpoint"), ADMIN_CASES)
def test_coordinators_cannot_reach_admin_pages(app, method, url, endpoint):
    client, _ = signed_in_client(app, Role.COORDINATOR)
    response = client.open(url, method=method)
    assert response.status_code == 403
    assert "You cannot open this page" in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "url", "endpoint"), ADMIN_CASES)
def test_admins_are_never_turned_away_from_admin_pages(app, method, url, endpoint):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.open(url, method=method)
    assert response.status_code not in (401, 403)
    assert "/staff/login" not in response.headers.get("Location", "")


def test_the_staff_home_leads_to_the_queue(app):
    client, _ = signed_in_client(app)
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/leads"

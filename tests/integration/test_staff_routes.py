"""Every /staff route, present and future, read from the URL map: anonymous visitors get the
login page, coordinators cannot reach admin pages, and signed-in staff allowed on a page get
exactly what it answers (a made-up id is a 404; an error page never passes)."""

import pytest

from leads.models import Role
from tests.helpers import blueprint_routes
from tests.staff_support import signed_in_client

PUBLIC = {"auth.login"}  # the only page under /staff that anonymous visitors may see
SIGN_OUT = "auth.logout"  # needs a session, not a role
ARGUMENTS = {"int": 999_999, "default": "no-such-message.eml"}
# What an allowed user gets: a GET without arguments answers 200 and a made-up id or file name
# is a 404, except as listed here. An empty POST to a route without arguments answers as below
# (a new POST route needs its line).
EMPTY_POST = {
    # the form again, each missing answer explained
    "directory.new_provider": 200,
    "directory.import_providers": 200,
    "directory.new_treatment": 200,
    "directory.new_condition": 200,
    "staff.account_settings": 400,
    "staff.change_password": 400,
    "staff.users_create": 400,
    "staff.export_csv": 200,  # the CSV of the (empty) list
    "staff.queue_search": 303,  # the queue, the search term kept out of the URL
}
REDIRECTS = {"staff.index": "/staff/leads", SIGN_OUT: "/staff/login"}
DEVELOPMENT_ONLY = {"staff.mailbox_list"}  # a 404 in any other environment


def _url(rule) -> str:
    values = {
        name: ARGUMENTS["int"] if "Integer" in type(conv).__name__ else ARGUMENTS["default"]
        for name, conv in rule._converters.items()
    }
    return rule.build(values, append_unknown=False)[1]


def _is_admin_only(rule) -> bool:
    view = blueprint_routes().view_functions[rule.endpoint]
    return rule.rule.startswith("/staff/admin/") or getattr(view, "required_roles", None) == (Role.ADMIN,)


def _cases(*, admin_only: bool | None = None):
    """(method, url, endpoint) of every /staff route; admin_only True or False picks a side."""
    cases = []
    for rule in sorted(blueprint_routes().url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/staff") or rule.endpoint in PUBLIC:
            continue
        if admin_only is not None and _is_admin_only(rule) != admin_only:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            cases.append(pytest.param(method, _url(rule), rule.endpoint, id=f"{method} {rule.rule}"))
    return cases


def pytest_generate_tests(metafunc):
    """Parametrize over the routes at collection: the route list is read from the blueprints."""
    if {"method", "url", "endpoint"} <= set(metafunc.fixturenames):
        marker = metafunc.definition.get_closest_marker("routes")
        admin_only = marker.kwargs.get("admin_only") if marker else None
        metafunc.parametrize(("method", "url", "endpoint"), _cases(admin_only=admin_only))


def _expected(method: str, url: str, endpoint: str) -> int:
    if endpoint in REDIRECTS:
        return 302
    if str(ARGUMENTS["int"]) in url or ARGUMENTS["default"] in url or endpoint in DEVELOPMENT_ONLY:
        return 404
    if method == "GET":
        return 200
    assert endpoint in EMPTY_POST, f"say in EMPTY_POST what {method} {url} answers to an empty form"
    return EMPTY_POST[endpoint]


def _assert_answers_as_expected(response, method, url, endpoint):
    expected = _expected(method, url, endpoint)
    assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if endpoint in REDIRECTS:
        assert response.headers["Location"] == REDIRECTS[endpoint]


def test_the_app_serves_exactly_the_routes_of_the_blueprints(app):
    def staff_rules(url_map):
        return {(r.rule, r.endpoint) for r in url_map.iter_rules() if r.rule.startswith("/staff")}

    assert staff_rules(app.url_map) == staff_rules(blueprint_routes().url_map)


def test_the_url_map_has_the_dashboardblueprint_routes():
    endpoints = {case.values[2] for case in _cases()}
    assert {"staff.queue_page", "staff.lead_detail", "staff.stats_page", "staff.export_csv"} <= endpoints
    assert {"staff.users", "staff.access_log_page"} <= {case.values[2] for case in _cases(admin_only=True)}


def test_every_staff_route_is_behind_a_role_guard(method, url, endpoint):
    view = blueprint_routes().view_functions[endpoint]
    if endpoint == SIGN_OUT:
        assert getattr(view, "__wrapped__", None) is not None, "sign-out must be behind login_required"
        return
    assert getattr(view, "required_roles", None), f"{endpoint} is not decorated with role_required"


def test_anonymous_visitors_are_sent_to_the_login_page(client, method, url, endpoint):
    response = client.open(url, method=method)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login?next=")


@pytest.mark.routes(admin_only=True)
def test_coordinators_cannot_reach_admin_pages(app, method, url, endpoint):
    client, _ = signed_in_client(app, Role.COORDINATOR)
    response = client.open(url, method=method)
    assert response.status_code == 403
    assert "You cannot open this page" in response.get_data(as_text=True)


@pytest.mark.routes(admin_only=False)
def test_coordinators_get_exactly_what_each_of_their_pages_answers(app, method, url, endpoint):
    client, _ = signed_in_client(app, Role.COORDINATOR)
    _assert_answers_as_expected(client.open(url, method=method), method, url, endpoint)


@pytest.mark.routes(admin_only=True)
def test_admins_get_exactly_what_each_admin_page_answers(app, method, url, endpoint):
    client, _ = signed_in_client(app, Role.ADMIN)
    _assert_answers_as_expected(client.open(url, method=method), method, url, endpoint)


def test_the_staff_home_leads_to_the_queue(app):
    client, _ = signed_in_client(app)
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/leads"

"""A number in a link larger than an id column holds names nothing: a 404 (or the page's own
answer to a bad link), never a 500. Every id column is PostgreSQL's 32-bit integer, so a number
past it was a DataError there, and one past 64 bits an OverflowError on SQLite."""

import re

import pytest
from werkzeug.exceptions import NotFound

from leads.extensions import db
from leads.ids import MAX_ID
from leads.models import Role
from leads.quotes import service as quotes
from tests.factories import LeadFactory
from tests.integration.test_quotes import patient, two_clinics_accept
from tests.quote_support import offer
from tests.staff_support import signed_in_client

pytestmark = pytest.mark.pg

TOO_LARGE = [MAX_ID + 1, 2**63, 99999999999999999999999]


def _int_routes(app):
    """(rule, method) for every route with an <int:…> in it."""
    return [
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if "<int:" in rule.rule
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def _filled(rule: str, number: int) -> str:
    """The rule's path with `number` for each id and a word for anything else (a token)."""
    return re.sub(r"<int:\w+>", str(number), re.sub(r"<(?:string:)?\w+>", "token", rule))


def test_every_int_in_every_route_stops_at_the_largest_id(app):
    routes = _int_routes(app)
    assert len(routes) >= 20
    urls = app.url_map.bind("localhost")
    for rule, method in routes:
        assert urls.match(_filled(rule, MAX_ID), method=method)[0], rule
        for number in (MAX_ID + 1, 2**63):
            with pytest.raises(NotFound):
                urls.match(_filled(rule, number), method=method)


@pytest.mark.parametrize("number", TOO_LARGE)
def test_a_patient_link_to_an_oversized_quote_number_is_not_found(app, client, taxonomy, number):
    lead, first, _ = two_clinics_accept(client)
    quotes.send_quote(first.id, offer())
    for method, path in (("GET", "choose"), ("POST", "choose"), ("POST", "renew")):
        response = client.open(
            f"{patient(lead)}/quotes/{number}/{path}", method=method, data={"revision": "1"}
        )
        assert response.status_code == 404, (method, path)
        assert "Page not found" in response.get_data(as_text=True)


def test_the_largest_quote_number_reaches_the_page_which_says_it_is_not_theirs(app, client, taxonomy):
    """At the bound itself the database is asked (PostgreSQL compares it), and answers nothing."""
    lead, _, _ = two_clinics_accept(client)
    response = client.get(f"{patient(lead)}/quotes/{MAX_ID}/choose", follow_redirects=True)
    assert response.status_code == 200
    assert "This quote is not part of your request." in response.get_data(as_text=True)


@pytest.mark.parametrize("number", TOO_LARGE)
def test_staff_and_directory_links_with_an_oversized_id_are_not_found(app, taxonomy, number):
    client, _ = signed_in_client(app, Role.ADMIN)
    lead = LeadFactory()
    db.session.commit()
    for method, url in (
        ("GET", f"/staff/leads/{number}"),
        ("POST", f"/staff/leads/{number}/notes"),
        ("POST", f"/staff/leads/{lead.id}/emails/{number}/resend"),
        ("GET", f"/staff/leads/{number}/privacy/erase"),
        ("POST", f"/staff/admin/users/{number}/active"),
        ("GET", f"/staff/admin/providers/{number}/edit"),
        ("POST", f"/staff/admin/providers/{number}/reactivate"),
        ("GET", f"/staff/admin/taxonomy/treatments/{number}/edit"),
    ):
        assert client.open(url, method=method).status_code == 404, url


def test_staff_links_at_the_largest_id_reach_the_database_and_find_nothing(app, taxonomy):
    client, _ = signed_in_client(app, Role.ADMIN)
    for url in (f"/staff/leads/{MAX_ID}", f"/staff/admin/providers/{MAX_ID}/edit"):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize("number", [MAX_ID + 1, 2**63 - 1])
def test_an_oversized_id_in_a_page_link_of_the_queue_or_access_log_gives_the_first_page(app, number):
    client, _ = signed_in_client(app, Role.ADMIN)
    queue = client.get(f"/staff/leads?after=0.0.{number}")
    assert queue.status_code == 200
    assert "That page link was not valid, so this is the first page." in queue.get_data(as_text=True)
    assert client.get(f"/staff/admin/access-log?before={number}").status_code == 200

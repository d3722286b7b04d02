"""The empty form's page is rendered once per language, link and taxonomy in each process, and
every visitor gets their own CSRF token, form token and referrer in it."""

import html
import re

import pytest

import config
from leads import create_app
from leads.extensions import db
from leads.intake import form_token
from leads.intake.form_page import HOLES, FormPages
from leads.intake.views import PAGES_KEY
from leads.models import Treatment
from tests.quote_support import VALID_ANSWERS, client_with_own_address, stored_counts


def _value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', page
    )
    assert match, f"no {name} field"
    return html.unescape(match.group(1))


def _pages(app) -> FormPages:
    return app.extensions[PAGES_KEY]


@pytest.fixture
def csrf_app(app, taxonomy):
    return create_app(config.TestingConfig, WTF_CSRF_ENABLED=True, QUOTE_MIN_FILL_SECONDS=0)


@pytest.mark.commits  # a second app, with its own connection to the database
def test_two_visitors_share_one_rendering_and_each_sends_the_form_with_their_own_tokens(csrf_app):
    first, second = client_with_own_address(csrf_app), client_with_own_address(csrf_app)
    page_one = first.get("/quote").get_data(as_text=True)
    page_two = second.get("/quote").get_data(as_text=True)

    assert len(_pages(csrf_app)) == 1
    assert not any(hole in page for hole in HOLES.values() for page in (page_one, page_two))
    assert _value(page_one, "csrf_token") != _value(page_two, "csrf_token")
    token = form_token.read(csrf_app.config["SECRET_KEY"], _value(page_one, "form_token"))
    assert token is not None and token.consent_language == "en"
    visitors = (
        (first, page_one, "one@example.org", "+4520111111"),
        (second, page_two, "two@example.org", "+4520222222"),
    )
    for client, page, email, phone in visitors:
        hidden = {name: _value(page, name) for name in ("csrf_token", "form_token")}
        response = client.post("/quote", data={**VALID_ANSWERS, **hidden, "email": email, "phone": phone})
        assert response.status_code == 303
    assert stored_counts()["Lead"] == 2


@pytest.mark.commits
def test_the_referrer_is_each_visitors_own_and_escaped(csrf_app):
    client = client_with_own_address(csrf_app)
    tricky = 'https://magazine.example/a?b=1&c="quoted"<x>'
    page = client.get("/quote", headers={"Referer": tricky}).get_data(as_text=True)
    assert _value(page, "referrer") == tricky
    assert '"quoted"<x>' not in page
    plain = client_with_own_address(csrf_app).get("/quote").get_data(as_text=True)
    assert _value(plain, "referrer") == ""
    assert len(_pages(csrf_app)) == 1


@pytest.mark.commits
def test_each_language_and_link_gets_its_own_page(csrf_app):
    client = client_with_own_address(csrf_app)
    danish = client.get("/quote?lang=da").get_data(as_text=True)
    linked = client_with_own_address(csrf_app).get(
        "/quote?treatment=neurorehabilitation-spinal-cord-injury&utm_source=magazine"
    )
    linked = linked.get_data(as_text=True)
    english = client_with_own_address(csrf_app).get("/quote").get_data(as_text=True)

    assert '<html lang="da"' in danish and '<html lang="en"' in english
    assert _value(linked, "utm_source") == "magazine" and _value(english, "utm_source") == ""
    assert 'value="neurorehabilitation-spinal-cord-injury" selected' in linked
    assert len(_pages(csrf_app)) == 3


@pytest.mark.commits
def test_a_changed_taxonomy_is_a_new_page(csrf_app):
    client = client_with_own_address(csrf_app)
    assert "Intensive neurorehabilitation after spinal cord injury" in client.get("/quote").get_data(
        as_text=True
    )
    with csrf_app.app_context():
        treatment = db.session.scalar(
            db.select(Treatment).filter_by(slug="neurorehabilitation-spinal-cord-injury")
        )
        treatment.name = "Neurorehabilitation, renamed"
        db.session.commit()
    page = client.get("/quote").get_data(as_text=True)
    assert "Neurorehabilitation, renamed" in page
    assert len(_pages(csrf_app)) == 2


def test_a_page_with_flashed_messages_is_rendered_for_that_visitor_alone(app, client, taxonomy):
    app.extensions.pop(PAGES_KEY, None)  # the app is shared: what earlier tests cached is not this one's
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "A message for this visitor only")]
    assert "A message for this visitor only" in client.get("/quote").get_data(as_text=True)
    assert PAGES_KEY not in app.extensions or len(_pages(app)) == 0
    assert "A message for this visitor only" not in client.get("/quote").get_data(as_text=True)


def test_the_cache_keeps_the_most_recently_used_pages_within_its_size():
    pages = FormPages(size=2)
    rendered = []

    def render(text):
        def _render():
            rendered.append(text)
            return f"{text} {HOLES['form_token']}"

        return _render

    assert pages.page(("a",), render("a"), {"form_token": "1"}) == "a 1"
    assert pages.page(("b",), render("b"), {"form_token": "2"}) == "b 2"
    assert pages.page(("a",), render("a"), {"form_token": "3"}) == "a 3"
    pages.page(("c",), render("c"), {"form_token": "4"})  # pushes out b, the least recently used
    pages.page(("a",), render("a"), {"form_token": "5"})
    pages.page(("b",), render("b"), {"form_token": "6"})
    assert rendered == ["a", "b", "c", "b"]


def test_a_page_without_a_place_for_a_value_is_an_error_not_a_form_without_it():
    with pytest.raises(RuntimeError, match="no place for csrf_token"):
        FormPages().page(("a",), lambda: "a page", {"csrf_token": "x"})

"""The staff sign-in page in a real browser: CSRF round trip, lockout message, accessibility."""

from leads.auth import accounts
from leads.extensions import db
from leads.models import User
from tests.e2e.conftest import axe_violations


def _make_coordinator():
    accounts.create_user("coord@example.dk", "correct horse battery", "coordinator")
    db.session.commit()


def test_a_coordinator_signs_in_and_out_with_the_keyboard(live_server, page):
    _make_coordinator()
    page.goto(live_server.url + "/staff/login")
    page.keyboard.press("Tab")  # skip link first
    page.get_by_label("Email address").fill("coord@example.dk")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(lambda url: "/staff/login" not in url)
    assert db.session.scalar(db.select(User.last_login_at)) is not None


def test_a_wrong_password_shows_a_generic_error_summary(live_server, page):
    _make_coordinator()
    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email address").fill("coord@example.dk")
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    summary = page.get_by_role("alert")
    assert "did not work" in summary.inner_text()
    assert axe_violations(page) == []

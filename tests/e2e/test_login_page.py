"""The staff sign-in page in a real browser: CSRF round trip, lockout message, accessibility."""

from playwright.sync_api import expect

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
    db.session.rollback()  # hold no SQLite lock: signing out writes
    # Signed out: the sign-in page opens with that result focused, so a screen reader reads it.
    page.get_by_role("button", name="Sign out (coord@example.dk)").focus()
    page.keyboard.press("Enter")
    result = page.get_by_role("status", name="Done")
    expect(result).to_be_focused()
    expect(result).to_contain_text("You are signed out.")


def test_a_wrong_password_shows_a_generic_error_summary(live_server, page):
    _make_coordinator()
    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email address").fill("coord@example.dk")
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    summary = page.get_by_role("alert")
    assert "did not work" in summary.inner_text()
    expect(summary).to_be_focused()  # the sign-in page has no script: autofocus alone does it
    assert axe_violations(page) == []

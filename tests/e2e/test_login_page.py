"""The staff sign-in page in a real browser: CSRF round trip, lockout message, accessibility."""

from playwright.sync_api import expect

from leads.auth import accounts
from leads.extensions import db
from leads.models import User
from tests.e2e.conftest import axe_violations
from tests.factories import LeadFactory


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


def test_a_note_sent_after_the_session_ended_returns_to_the_lead_after_sign_in(live_server, page, taxonomy):
    """The browser comes back to the lead page it was on, told that the note was not saved."""
    _make_coordinator()
    lead = LeadFactory()
    db.session.commit()
    lead_page = f"{live_server.url}/staff/leads/{lead.id}"
    db.session.rollback()  # hold no SQLite lock while the live server works
    page.goto(live_server.url + "/staff/login")
    page.get_by_label("Email address").fill("coord@example.dk")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.goto(lead_page)
    live_server.app.config["SESSION_IDLE_MINUTES"] = -1  # every session has now been idle too long
    page.get_by_label("Add a note").fill("Called the patient.")
    page.get_by_role("button", name="Save note").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Your session expired, so that was not saved.")
    expect(summary).to_be_focused()
    live_server.app.config["SESSION_IDLE_MINUTES"] = 30
    page.get_by_label("Email address").fill("coord@example.dk")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lead_page)
    expect(page.get_by_label("Add a note")).to_be_visible()

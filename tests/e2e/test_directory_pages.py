"""An admin manages the provider directory in a real browser (CSRF on): adds a provider after
fixing the errors the page points to, pauses and reactivates it; axe finds no WCAG A/AA problems."""

import sqlalchemy as sa
from playwright.sync_api import expect

from leads.auth import accounts
from leads.dev import seed
from leads.extensions import db
from leads.models import Provider, Treatment
from tests.e2e.conftest import axe_violations, screenshot

EMAIL, PASSWORD = "admin@directory.example", "a long admin password"


def _sign_in(page, live_server):
    page.goto(f"{live_server.url}/staff/login")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _provider(name, *attributes):
    """The provider's attribute values, read in a transaction that ends at once (the live server
    writes next, and SQLite has one writer)."""
    provider = db.session.scalar(sa.select(Provider).filter_by(name=name))
    values = tuple(getattr(provider, attribute) for attribute in attributes)
    db.session.rollback()
    return values


def _setup():
    seed.load_demo_providers()
    accounts.create_user(EMAIL, PASSWORD, "admin")
    db.session.commit()


def test_an_admin_adds_a_provider_after_fixing_the_errors(app, taxonomy, live_server, page):
    _setup()
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/staff/admin/providers")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Add a provider").click()
    page.get_by_label("Name (required)").fill("Kolding Spinal Unit")
    page.get_by_label("Leads per week (required)").fill("many")
    page.get_by_role("button", name="Add provider").click()

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("The provider was not saved")
    expect(summary).to_be_focused()  # the directory pages have no script: autofocus alone does it
    assert axe_violations(page) == []
    screenshot(page, "directory-provider-errors")
    summary.get_by_role("link", name="Leads per week: Enter how many leads a week").click()
    expect(page.get_by_label("Leads per week (required)")).to_be_focused()
    expect(page.get_by_label("Name (required)")).to_have_value("Kolding Spinal Unit")

    page.get_by_label("City (required)").fill("Kolding")
    page.get_by_label("Region (required)").select_option("Syddanmark")
    page.get_by_label("Notification email addresses (required)").fill("leads@kolding-spinal.dk")
    page.get_by_label("Languages the staff speak (required)").fill("da, en")
    page.get_by_label("Danish").check()
    page.get_by_label("Leads per week (required)").fill("4")
    page.get_by_label("Intensive neurorehabilitation after spinal cord injury").select_option("approved")
    page.get_by_label("Spinal cord injury (incomplete) (Spinal cord injury)").check()
    page.get_by_role("button", name="Add provider").click()

    expect(page.get_by_text("Saved Kolding Spinal Unit.")).to_be_visible()
    expect(page.get_by_role("status", name="Done")).to_be_focused()
    values = _provider("Kolding Spinal Unit", "weekly_capacity", "notification_language", "region")
    assert values == (4, "da", "Syddanmark")


def test_an_admin_pauses_and_reactivates_a_provider_on_a_phone(app, taxonomy, live_server, phone_page):
    _setup()
    page = phone_page
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/staff/admin/providers")
    page.get_by_role("link", name="Pause Fyn Orthopaedic and Sports Clinic (demo)").click()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Pause provider").click()
    expect(page.get_by_text("Fyn Orthopaedic and Sports Clinic (demo): Paused.")).to_be_visible()
    assert _provider("Fyn Orthopaedic and Sports Clinic (demo)", "active") == (False,)
    screenshot(page, "directory-providers-phone")
    page.get_by_role("button", name="Reactivate Fyn Orthopaedic and Sports Clinic (demo)").click()
    expect(page.get_by_text("is active again and gets new leads")).to_be_visible()
    assert _provider("Fyn Orthopaedic and Sports Clinic (demo)", "active") == (True,)


def test_the_taxonomy_pages_pass_axe(app, taxonomy, live_server, page):
    _setup()
    _sign_in(page, live_server)
    treatment_id = db.session.scalar(sa.select(sa.func.min(Treatment.id)))
    db.session.rollback()
    for path in (
        "/staff/admin/taxonomy",
        f"/staff/admin/taxonomy/treatments/{treatment_id}/edit",
        "/staff/admin/providers/import",
    ):
        page.goto(f"{live_server.url}{path}")
        assert axe_violations(page) == [], path


def test_the_directory_pages_fit_a_768_px_tablet_with_no_sideways_scroll(app, taxonomy, live_server, browser):
    """Wide tables scroll inside their own region (their hidden button labels with them); the
    import page's long column list wraps."""
    _setup()
    tablet = browser.new_context(viewport={"width": 768, "height": 1024}).new_page()
    _sign_in(tablet, live_server)
    for path in ("/staff/admin/providers", "/staff/admin/providers/import", "/staff/admin/taxonomy"):
        tablet.goto(f"{live_server.url}{path}")
        assert tablet.evaluate("document.documentElement.scrollWidth") <= 768, path
    tablet.context.close()

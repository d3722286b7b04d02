"""The access log page: admins see who viewed or exported which lead, newest first, filtered
by staff member or lead, a page at a time."""

import re

import pytest

from leads.extensions import db
from leads.models import Role
from leads.staff import access_log
from tests.factories import LeadFactory
from tests.staff_support import make_staff, signed_in_client

# The access log filters and pages with SQL that differs on PostgreSQL.
pytestmark = pytest.mark.pg


@pytest.fixture
def history(app, taxonomy):
    alice = make_staff(email="alice@example.dk")
    bob = make_staff(email="bob@example.dk")
    first, second = LeadFactory(), LeadFactory()
    db.session.commit()
    access_log.record_view(alice.id, first.id)
    access_log.record_view(bob.id, second.id)
    access_log.record_export(bob.id, rows=12, filters="country=DE", with_details=False)
    db.session.commit()
    return {"alice": alice, "bob": bob, "first": first, "second": second}


def test_an_admin_sees_every_view_and_export_newest_first(app, history):
    client, _ = signed_in_client(app, Role.ADMIN)
    html = client.get("/staff/admin/access-log").get_data(as_text=True)
    export = html.index("Exported")
    assert export < html.index(history["second"].reference) < html.index(history["first"].reference)
    assert "12 lead(s); filters: country=DE; free-text details: no" in html
    assert f'href="/staff/leads/{history["first"].id}"' in html


def test_the_log_filters_by_staff_member_and_by_lead(app, history):
    client, _ = signed_in_client(app, Role.ADMIN)
    by_alice = client.get("/staff/admin/access-log?user=ALICE@example.dk").get_data(as_text=True)
    assert history["first"].reference in by_alice and history["second"].reference not in by_alice
    by_lead = client.get(f"/staff/admin/access-log?lead={history['second'].reference}").get_data(as_text=True)
    assert "bob@example.dk" in by_lead and history["first"].reference not in by_lead
    assert "Exported" not in by_lead


def test_an_unknown_filter_value_is_named_in_the_error(app, history):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get("/staff/admin/access-log?user=nobody@example.dk&lead=Q-ZZZZZZ")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "No staff account has the address nobody@example.dk" in html
    assert "No request has the reference Q-ZZZZZZ" in html


def test_the_log_pages_through_older_entries(app, history):
    page = access_log.recent(limit=2)
    assert [entry.action for entry, _, _ in page.rows] == ["export", "view"]
    older = access_log.recent(limit=2, before=page.next_before)
    assert [(email, ref) for _, email, ref in older.rows] == [
        ("alice@example.dk", history["first"].reference)
    ]
    assert older.next_before is None
    client, _ = signed_in_client(app, Role.ADMIN)
    html = client.get(f"/staff/admin/access-log?before={page.next_before}").get_data(as_text=True)
    assert "alice@example.dk" in html and "Exported" not in html


def test_a_reference_typed_without_its_prefix_filters_the_log(app, history):
    history["second"].reference = "Q-QK3M9P"  # Q is a code letter as well as the prefix
    db.session.commit()
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get("/staff/admin/access-log?lead=qk3m9p")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "bob@example.dk" in html and history["first"].reference not in html


# 2147483648: beyond PostgreSQL's INTEGER id column, which refused it with a 500.
@pytest.mark.parametrize(
    "before", ["\u00b2", "\u0663", "99999999999999999999", "9999999999999999999", "2147483648", "-1"]
)
def test_a_broken_older_entries_link_shows_the_newest_entries(app, history, before):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get("/staff/admin/access-log", query_string={"before": before})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Exported" in html and "alice@example.dk" in html


@pytest.mark.parametrize("field", ["user", "lead"])
def test_a_control_character_in_a_filter_is_refused_with_a_message(app, history, field):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get("/staff/admin/access-log", query_string={field: "alice@example.dk\x00"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400  # PostgreSQL refuses NUL: never sent to it
    message = "Remove the invisible control characters" if field == "user" else "No request has the reference"
    assert message in html and "Exported" not in html


def test_a_filter_error_is_told_next_to_its_field_as_well_as_in_the_summary(app, history):
    """As on every staff form: the summary links the field, and the field says what is wrong
    itself, tied to the input so a screen reader reads it with the field."""
    client, _ = signed_in_client(app, Role.ADMIN)
    html = client.get("/staff/admin/access-log?user=nobody@example.dk&lead=Q-ZZZZZZ").get_data(as_text=True)
    for name, message in (
        ("user", "No staff account has the address nobody@example.dk"),
        ("lead", "No request has the reference Q-ZZZZZZ"),
    ):
        [field] = re.findall(rf'<input[^>]*\bid="{name}"[^>]*>', html)
        assert 'aria-invalid="true"' in field and f'aria-describedby="{name}-error"' in field
        assert re.search(rf'<p class="field-error" id="{name}-error">[^<]*{message}', html)
        assert f'<a href="#{name}">' in html

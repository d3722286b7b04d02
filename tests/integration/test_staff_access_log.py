"""The access log page: admins see who viewed or exported which lead, newest first, filtered
by staff member or lead, a page at a time."""

import json
import re

import pytest
import sqlalchemy as sa
from markupsafe import escape

from leads.extensions import db
from leads.models import AccessLog, Lead, Role, access_detail
from leads.patients import privacy
from leads.staff import access_log
from tests.factories import LeadFactory
from tests.staff_support import make_staff, marking_catalog, signed_in_client

# The access log filters and pages with SQL that differs on PostgreSQL.
pytestmark = pytest.mark.pg


def _entries(html: str) -> str:
    """The log's table (the filter's list of kinds names them too); empty when none is shown."""
    return html[html.index("<tbody>") : html.index("</tbody>")] if "<tbody>" in html else ""


@pytest.fixture
def history(app, taxonomy):
    alice = make_staff(email="alice@example.dk")
    bob = make_staff(email="bob@example.dk")
    first, second = LeadFactory(), LeadFactory()
    db.session.commit()
    access_log.record_view(alice.id, first.id)
    access_log.record_view(bob.id, second.id)
    access_log.record_export(bob.id, rows=12, filters="country=DE", searched=False, with_details=False)
    db.session.commit()
    return {"alice": alice, "bob": bob, "first": first, "second": second}


def test_an_admin_sees_every_view_and_export_newest_first(app, history):
    client, _ = signed_in_client(app, Role.ADMIN)
    html = _entries(client.get("/staff/admin/access-log").get_data(as_text=True))
    export = html.index("Exported")
    assert export < html.index(history["second"].reference) < html.index(history["first"].reference)
    assert "Leads: 12; Filters: country=DE; Without free-text details" in html
    assert f'href="/staff/leads/{history["first"].id}"' in html


def test_the_log_filters_by_staff_member_and_by_lead(app, history):
    client, _ = signed_in_client(app, Role.ADMIN)
    by_alice = client.get("/staff/admin/access-log?user=ALICE@example.dk").get_data(as_text=True)
    assert history["first"].reference in by_alice and history["second"].reference not in by_alice
    by_lead = client.get(f"/staff/admin/access-log?lead={history['second'].reference}").get_data(as_text=True)
    assert "bob@example.dk" in by_lead and history["first"].reference not in by_lead
    assert "Exported" not in _entries(by_lead)


def test_an_unknown_filter_value_is_named_in_the_error(app, history):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get("/staff/admin/access-log?user=nobody@example.dk&lead=Q-ZZZZZZ")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "No staff account has the address nobody@example.dk" in html
    assert "No request has the reference &#39;Q-ZZZZZZ&#39;." in html


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
    assert "alice@example.dk" in html and "Exported" not in _entries(html)


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
    assert "Exported" in _entries(html) and "alice@example.dk" in html


@pytest.mark.parametrize("field", ["user", "lead"])
def test_a_control_character_in_a_filter_is_refused_with_a_message(app, history, field):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get("/staff/admin/access-log", query_string={field: "alice@example.dk\x00"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400  # PostgreSQL refuses NUL: never sent to it
    message = "Remove the invisible control characters" if field == "user" else "No request has the reference"
    assert message in html and "Exported" not in _entries(html)


def test_a_filter_error_is_told_next_to_its_field_as_well_as_in_the_summary(app, history):
    """As on every staff form: the summary links the field, and the field says what is wrong
    itself, tied to the input so a screen reader reads it with the field."""
    client, _ = signed_in_client(app, Role.ADMIN)
    html = client.get("/staff/admin/access-log?user=nobody@example.dk&lead=Q-ZZZZZZ").get_data(as_text=True)
    for name, message in (
        ("user", "No staff account has the address nobody@example.dk"),
        ("lead", "No request has the reference &#39;Q-ZZZZZZ&#39;."),
    ):
        [field] = re.findall(rf'<input[^>]*\bid="{name}"[^>]*>', html)
        assert 'aria-invalid="true"' in field and f'aria-describedby="{name}-error"' in field
        assert re.search(rf'<p class="field-error" id="{name}-error">[^<]*{message}', html)
        assert f'<a href="#{name}">' in html


# Searches and exports, lead by lead ------------------------------------------------------------


def _logged(user) -> list[tuple[str, str | None, dict]]:
    """The user's entries, oldest first: (action, lead reference, detail as stored, decoded)."""
    rows = db.session.execute(
        sa.select(AccessLog.action, Lead.reference, AccessLog.detail)
        .outerjoin(Lead, Lead.id == AccessLog.lead_id)
        .where(AccessLog.user_id == user.id)
        .order_by(AccessLog.id)
    )
    return [(action, reference, json.loads(detail)) for action, reference, detail in rows]


def test_a_search_names_each_lead_its_page_listed_and_never_the_term(app, taxonomy):
    zelda = LeadFactory(full_name="Zelda Quinby", email="zelda@example.org")
    zoe = LeadFactory(full_name="Zoe Quinby", email="zoe@example.org")
    LeadFactory(full_name="Other Patient")
    db.session.commit()
    client, coordinator = signed_in_client(app)
    app.config["STAFF_PAGE_SIZE"] = 1

    client.get("/staff/leads")  # not a search: the page's own entry only
    found = client.post("/staff/leads", data={"q": "Quinby"}, follow_redirects=True).get_data(as_text=True)

    [listed] = [lead for lead in (zelda, zoe) if lead.full_name in found]  # one page of one lead
    assert _logged(coordinator) == [
        ("queue", None, {"what": "queue", "filters": "", "search": False}),
        ("queue", None, {"what": "queue", "filters": "", "search": True}),
        ("queue", listed.reference, {"what": "search_listed", "filters": ""}),
    ]
    every_detail = db.session.scalars(sa.select(AccessLog.detail)).all()
    assert not any("Quinby" in detail for detail in every_detail)


def test_the_log_answers_which_leads_a_persons_searches_and_exports_exposed(app, taxonomy):
    searched = LeadFactory(full_name="Zelda Quinby", country="DE")
    exported = [LeadFactory(country="NO"), LeadFactory(country="NO")]
    db.session.commit()
    bob, bob_user = signed_in_client(app, Role.ADMIN, email="bob@example.dk")
    bob.post("/staff/leads", data={"q": "Zelda Quinby"}, follow_redirects=True)
    bob.post("/staff/leads/export", data={"country": "NO"}).get_data()
    admin, _ = signed_in_client(app, Role.ADMIN)

    by_exports = admin.get("/staff/admin/access-log?user=bob@example.dk&action=export").get_data(as_text=True)
    by_searches = admin.get("/staff/admin/access-log?user=bob@example.dk&action=queue").get_data(as_text=True)
    by_lead = admin.get(f"/staff/admin/access-log?lead={searched.reference}").get_data(as_text=True)

    assert all(lead.reference in by_exports for lead in exported) and searched.reference not in by_exports
    assert "In a CSV export; Filters: country=NO; Without free-text details" in by_exports
    assert searched.reference in by_searches and exported[0].reference not in by_searches
    assert "Listed by a search (its term is not kept); No filters" in by_lead and "bob@example.dk" in by_lead
    assert '<option selected value="export">Exported the queue</option>' in by_exports
    older = admin.get("/staff/admin/access-log?user=bob@example.dk&action=export&before=999999")
    assert exported[1].reference in older.get_data(as_text=True)


def test_an_unknown_kind_of_entry_is_refused_beside_its_field(app, history):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.get("/staff/admin/access-log?action=teleported")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert '<p class="field-error" id="action-error">Choose what to show from the list</p>' in html


@pytest.mark.pg_only
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"user_id": 1}, "ix_access_log_user_id_id"),
        ({"lead_id": 1}, "ix_access_log_lead_id_id"),
        ({"action": "erasure"}, "ix_access_log_action_id"),
    ],
    ids=["by staff member", "by lead", "by kind"],
)
def test_on_postgresql_each_filter_reads_its_newest_entries_from_an_index_without_sorting(
    app, filters, index
):
    """Searches and exports write a row per lead: a filter must not sort every entry it matches."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        access_log.recent(**filters, before=1000)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    statement, parameters = seen[-1]
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))  # few rows: let the plan show the index
    db.session.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
    cursor = db.session.connection().connection.cursor()
    cursor.execute("EXPLAIN " + statement, parameters)
    plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan and "Sort" not in plan, plan


# The detail column in the reader's language ------------------------------------------------------


def _details(html: str) -> list[tuple[str, str]]:
    """(who, detail) of each row the log shows, newest first."""
    rows = re.findall(r"<tr>(.*?)</tr>", _entries(html), re.S)
    return [(cells[1], cells[4]) for cells in (re.findall(r"<td>(.*?)</td>", row, re.S) for row in rows)]


def test_each_kind_of_detail_is_stored_without_words_and_read_in_the_readers_language(app, taxonomy):
    """A Danish admin reads every detail through the catalogs (⟦…⟧ marks each text that went
    through one), none of it in English; the rows hold no words to translate."""
    lead = LeadFactory(country="NO", full_name="Zelda Quinby")
    db.session.commit()
    admin, admin_user = signed_in_client(app, Role.ADMIN, language="da")
    coordinator, _ = signed_in_client(app, Role.COORDINATOR)
    admin.post("/staff/leads", data={"q": "Zelda Quinby"}, follow_redirects=True)
    admin.post("/staff/leads/export", data={"country": "NO"}).get_data()
    admin.get(f"/staff/leads/{lead.id}/privacy/export")  # lists the patient's requests for export
    privacy.export_patient(lead.reference, user_id=admin_user.id, chosen=[lead.reference])  # its download
    privacy.export_patient(lead.reference, user_id=None, chosen=[lead.reference])  # the command line
    admin.get(f"/staff/leads/{lead.id}/privacy/erase")  # lists the patient's requests for erasure
    assert coordinator.get(f"/staff/leads/{lead.id}/privacy/erase").status_code == 403
    db.session.add(AccessLog(action="erasure", lead_id=lead.id, detail=privacy.AT_DEADLINE_DETAIL))
    db.session.commit()

    with marking_catalog(app):
        details = _details(admin.get("/staff/admin/access-log").get_data(as_text=True))
    shown = {detail for _, detail in details}
    assert {
        "⟦No filters⟧; ⟦With a search (its term is not kept)⟧",
        "⟦Listed by a search (its term is not kept)⟧; ⟦No filters⟧",
        "⟦Leads: 1⟧; ⟦Filters: country=NO⟧; ⟦Without free-text details⟧",
        "⟦In a CSV export⟧; ⟦Filters: country=NO⟧; ⟦Without free-text details⟧",
        "⟦From a staff page⟧",
        "⟦From the command line⟧",
        "⟦Listed for erasure⟧",
        "⟦Listed for export⟧",
        f"⟦Asked for /staff/leads/{lead.id}/privacy/erase⟧",
        "⟦Automatically, at the erasure deadline⟧",
    } <= shown
    assert all(piece.startswith("⟦") and piece.endswith("⟧") for d in shown if d for piece in d.split("; "))
    by_nobody = {who for who, detail in details if "From the command line" in detail or "deadline" in detail}
    assert by_nobody == {"⟦Command line (operator)⟧", "⟦System⟧"}
    assert not any("Quinby" in detail for detail in db.session.scalars(sa.select(AccessLog.detail)))


def test_rows_written_before_details_were_stored_without_words_show_what_they_hold(app, taxonomy):
    admin, admin_user = signed_in_client(app, Role.ADMIN, language="da")
    lead = LeadFactory()
    db.session.commit()
    old = [
        (admin_user.id, "queue", "listed by a search; filters: q=(search)"),
        (None, "erasure", "automatic, at the erasure deadline"),
        (None, "patient_export", "command line"),
        (admin_user.id, "refused", "/staff/admin/users"),
        (admin_user.id, "view", '{"what": "a kind this code does not know"}'),
    ]
    for user_id, action, detail in old:
        db.session.add(AccessLog(user_id=user_id, lead_id=lead.id, action=action, detail=detail))
    db.session.commit()
    with marking_catalog(app):
        details = _details(admin.get(f"/staff/admin/access-log?lead={lead.reference}").get_data(as_text=True))
    shown = {detail: who for who, detail in details}
    for user_id, _, detail in old:
        assert shown[str(escape(detail))] == (admin_user.email if user_id else shown[str(escape(detail))])
    assert shown["automatic, at the erasure deadline"] == "⟦System⟧"
    assert shown["command line"] == "⟦Command line (operator)⟧"


@pytest.mark.parametrize(
    "values",
    [
        {"path": "/staff/" + "x" * 600},
        {"filters": 'source="' * 200, "search": True},
        {"filters": "æ\x01" * 400},
    ],
    ids=["a long path", "quotes JSON escapes", "control characters and letters beyond ASCII"],
)
def test_a_detail_too_long_for_its_column_is_cut_to_fit_and_stays_whole(values):
    stored = access_detail("queue", **values)
    assert len(stored) <= AccessLog.detail.type.length
    decoded = json.loads(stored)
    [(key, value)] = [(k, v) for k, v in values.items() if isinstance(v, str)]
    assert decoded["what"] == "queue" and value.startswith(decoded[key]) and len(decoded[key]) > 100

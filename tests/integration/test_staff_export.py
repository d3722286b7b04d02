"""CSV export of the filtered queue: admins only, logged, free-text medical details only when
asked for, safe to open in a spreadsheet."""

import csv
import io
import json

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import AccessLog, Role
from leads.staff import access_log
from leads.staff.export import csv_cell
from leads.staff.queue_views import SEARCH_MAX_AGE_SECONDS, SEARCHES
from tests.factories import LeadFactory
from tests.staff_support import ago, signed_in_client

# The export runs the queue's filtered query.
pytestmark = pytest.mark.pg


@pytest.fixture
def leads(app, taxonomy):
    made = {
        "de": LeadFactory(
            full_name="Anna Berg", country="DE", created_at=ago(days=1), details="Private history"
        ),
        "no": LeadFactory(
            full_name='=HYPERLINK("http://evil")',
            country="NO",
            created_at=ago(days=2),
            details="Other story",
            utm_source="magazine",
        ),  # fmt: skip
    }
    db.session.commit()
    return made


def _rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_an_admin_exports_the_filtered_list_without_medical_free_text(app, leads):
    client, admin = signed_in_client(app, Role.ADMIN)
    response = client.post("/staff/leads/export", data={"country": "DE"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    rows = _rows(response)
    assert [r["reference"] for r in rows] == [leads["de"].reference]
    assert rows[0]["full_name"] == "Anna Berg" and rows[0]["email"] == leads["de"].email
    assert "details" not in rows[0] and "Private history" not in response.get_data(as_text=True)
    entry, exported = db.session.scalars(sa.select(AccessLog).order_by(AccessLog.id)).all()
    assert (entry.user_id, entry.action, entry.lead_id) == (admin.id, "export", None)
    assert json.loads(entry.detail) == {
        "what": "export",
        "rows": 1,
        "filters": "country=DE",
        "search": False,
        "free_text": False,
    }
    assert (exported.user_id, exported.action, exported.lead_id) == (admin.id, "export", leads["de"].id)
    assert json.loads(exported.detail) == {
        "what": "exported_lead",
        "filters": "country=DE",
        "search": False,
        "free_text": False,
    }
    assert exported.created_at == entry.created_at  # one export, one moment


def test_free_text_details_are_exported_only_when_asked_for(app, leads):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.post("/staff/leads/export", data={"include_details": "y"})
    rows = _rows(response)
    assert {r["details"] for r in rows} == {"Private history", "Other story"}
    details = db.session.scalars(sa.select(AccessLog.detail)).all()
    assert len(details) == 3 and all(json.loads(detail)["free_text"] is True for detail in details)


def test_a_search_term_is_not_copied_into_the_access_log(app, leads):
    client, _ = signed_in_client(app, Role.ADMIN)
    client.post("/staff/leads/export", data={"q": "Anna Berg"}).get_data()
    details = db.session.scalars(sa.select(AccessLog.detail)).all()
    assert len(details) == 2 and all("Anna" not in d and json.loads(d)["search"] is True for d in details)


def test_spreadsheet_formulas_are_defused_but_phone_numbers_stay_intact(app, leads):
    client, _ = signed_in_client(app, Role.ADMIN)
    rows = {r["country"]: r for r in _rows(client.post("/staff/leads/export", data={}))}
    assert rows["NO"]["full_name"] == '\'=HYPERLINK("http://evil")'
    assert rows["DE"]["phone"] == leads["de"].phone and rows["DE"]["phone"].startswith("+")
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)" and csv_cell("-2+3") == "'-2+3" and csv_cell(None) == ""


def test_coordinators_cannot_export_and_only_the_refusal_is_logged(app, leads):
    client, coordinator = signed_in_client(app, Role.COORDINATOR)
    assert client.post("/staff/leads/export", data={}).status_code == 403
    entries = db.session.scalars(sa.select(AccessLog)).all()
    assert [(e.user_id, e.action, e.detail) for e in entries] == [
        (coordinator.id, "refused", '{"what":"refused","path":"/staff/leads/export"}')
    ]


def test_an_export_larger_than_the_ceiling_is_refused_with_a_reason(app, leads):
    client, _ = signed_in_client(app, Role.ADMIN)
    app.config["EXPORT_MAX_ROWS"] = 1
    response = client.post("/staff/leads/export", data={"country": ""})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "more than 1 leads" in page and "Narrow the filters" in page
    assert db.session.scalar(sa.select(sa.func.count(AccessLog.id)).filter_by(action="export")) == 0


def test_export_with_bad_filters_says_so_and_exports_nothing(app, leads):
    client, _ = signed_in_client(app, Role.ADMIN)
    response = client.post("/staff/leads/export", data={"created_from": "yesterday"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    # The queue's own error summary explains the filters, the one box focused as the page opens.
    assert "Some filters need fixing" in page and page.count("autofocus") == 1
    assert db.session.scalar(sa.select(sa.func.count(AccessLog.id)).filter_by(action="export")) == 0


def test_the_queue_offers_admins_an_export_of_exactly_the_current_filters(app, leads):
    client, _ = signed_in_client(app, Role.ADMIN)
    html = client.get("/staff/leads?country=NO&source=magazine").get_data(as_text=True)
    form = html[html.index('action="/staff/leads/export"') :]
    form = form[: form.index("</form>")]
    assert '<input type="hidden" name="country" value="NO">' in form
    assert '<input type="hidden" name="source" value="magazine">' in form
    assert "Include free-text medical details" in form


def _search(client, term: str) -> str:
    """Search the queue as the page does; the search id the queue's address (and export form) carries."""
    location = client.post("/staff/leads", data={"q": term}).headers["Location"]
    return location.split("search=", 1)[1]


@pytest.mark.parametrize("forgotten", ["expired", "unknown"])
def test_an_export_from_a_search_that_can_no_longer_be_recalled_exports_nothing(app, leads, forgotten):
    """The export form of a search page carries only the search's id: past its hour (or in a
    session renewed since) the export must not fall back to every lead."""
    client, admin = signed_in_client(app, Role.ADMIN)
    search_id = _search(client, "Anna Berg")
    with client.session_transaction() as session:
        kept = session[SEARCHES]
        if forgotten == "expired":
            kept[search_id][1] -= SEARCH_MAX_AGE_SECONDS + 1
        else:
            kept.pop(search_id)
        session[SEARCHES] = kept

    response = client.post("/staff/leads/export", data={"search": search_id, "include_details": "y"})

    assert response.status_code == 302 and response.mimetype != "text/csv"
    assert "search=" not in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "That search has expired, so nothing was exported" in page
    exports = sa.select(sa.func.count(AccessLog.id)).filter_by(action="export")
    assert db.session.scalar(exports) == 0


def test_each_exported_lead_is_logged_against_the_admin_and_the_export(app, leads):
    """Which leads did this person's exports expose: one row per lead the CSV held, naming it."""
    client, admin = signed_in_client(app, Role.ADMIN)
    exported = _rows(client.post("/staff/leads/export", data={"include_details": "y"}))
    logged = db.session.execute(
        sa.select(AccessLog.lead_id, AccessLog.detail).where(
            AccessLog.user_id == admin.id, AccessLog.action == "export", AccessLog.lead_id.is_not(None)
        )
    ).all()
    assert sorted(lead_id for lead_id, _ in logged) == sorted(lead.id for lead in leads.values())
    assert len(exported) == len(logged)
    assert {detail for _, detail in logged} == {
        '{"what":"exported_lead","filters":"","search":false,"free_text":true}'
    }


def test_a_large_export_logs_its_leads_a_batch_at_a_time_not_one_insert_each(app, leads, monkeypatch):
    """100,000 leads must not cost 100,000 round trips: one INSERT per batch of leads."""
    for n in range(5):
        LeadFactory(full_name=f"Patient {n}", country="SE")
    db.session.commit()
    monkeypatch.setattr(access_log, "BATCH", 3)
    client, _ = signed_in_client(app, Role.ADMIN)
    inserts = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO ACCESS_LOG"):
            inserts.append(executemany)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        rows = _rows(client.post("/staff/leads/export", data={}))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(rows) == 7
    logged = sa.select(sa.func.count(AccessLog.id)).where(AccessLog.lead_id.is_not(None))
    assert db.session.scalar(logged) == 7
    assert inserts == [False] * 4  # the export's own row, then 3 + 3 + 1 leads in three statements

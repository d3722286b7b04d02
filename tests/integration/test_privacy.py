"""Privacy operations from the three doors: the command line, the admin's lead page and the
patient's own request; retention; consent you can prove; the privacy notice."""

import html as html_module
import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from leads.dev import seed
from leads.extensions import db
from leads.i18n import phone_for_reading
from leads.messaging import email as email_module
from leads.messaging.email import deliver_email
from leads.models import (
    AccessLog,
    Assignment,
    Consent,
    EmailMessage,
    ErasureRecord,
    Lead,
    LeadEvent,
    Provider,
    Quote,
    Role,
)
from leads.notes import describe_reason
from leads.patients import privacy
from leads.patients.self_service import request_erasure, withdraw_consent
from leads.routing.escalation import escalate_assignments
from leads.routing.notification import KEY_PREFIXES, queue_provider_emails
from leads.routing.service import route_lead
from leads.staff import lead_actions
from leads.staff.lead_actions import resend_email
from leads.timeutil import utcnow
from leads.workflow import OPEN, LeadStatus, check_transition
from tests.factories import (
    AssignmentFactory,
    EmailMessageFactory,
    LeadFactory,
    ProviderFactory,
    UserFactory,
)
from tests.helpers import at_once, lock_order
from tests.integration.test_quotes import provider, quote_form, two_clinics_accept
from tests.quote_support import answers, client_with_own_address
from tests.staff_support import signed_in_client

# SQL functions, guarded updates and row locks: run again on PostgreSQL.
pytestmark = pytest.mark.pg


def _lead(**fields):
    lead = LeadFactory(**fields)
    db.session.add(
        Consent(
            lead=lead, text_version="2026-11-v1", share_with_providers=True, contact=True, source_form="t"
        )
    )
    db.session.commit()
    return lead


def _routed_and_sent():
    seed.load_demo_providers()
    lead = _lead()
    assert route_lead(lead.id) == "routed"
    for email_id in db.session.scalars(sa.select(EmailMessage.id)).all():
        deliver_email(email_id)
    return lead


def test_the_cli_exports_every_request_sent_from_the_patients_address_as_json_and_logs_it(
    app, taxonomy, runner, tmp_path
):
    first = _lead(email="Mia@Example.org")
    _lead(email="mia@example.org", phone=first.phone)
    _lead(email="someone.else@example.org")
    out = tmp_path / "mia.json"

    result = runner.invoke(args=["privacy", "export", first.reference.lower(), "-o", str(out)])

    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert [r["email"].lower() for r in document["requests"]] == ["mia@example.org"] * 2
    assert document["requests"][0]["consent"]["text"]["share_with_providers"].startswith("I agree")
    actions = db.session.scalars(sa.select(AccessLog.action)).all()
    assert actions == ["patient_export", "patient_export"]
    assert "Left out" not in result.stderr


def _phone_borrowed():
    """The victim's request, and one sent with the victim's phone number and another address,
    which intake marks a repeat of the victim's."""
    victim = _lead(full_name="Vera Victim", email="vera@example.org", phone="+4520111111")
    other = _lead(email="eve@example.org", phone="+4520111111", duplicate_of=victim)
    return victim, other


def test_a_request_sent_with_someone_elses_phone_number_does_not_export_theirs(app, taxonomy, runner):
    victim, other = _phone_borrowed()

    result = runner.invoke(args=["privacy", "export", other.reference])

    assert result.exit_code == 0, result.output
    assert [r["reference"] for r in json.loads(result.stdout)["requests"]] == [other.reference]
    assert "Vera Victim" not in result.stdout and "vera@example.org" not in result.stdout
    assert (
        f"Left out {victim.reference}: linked only by a phone number; add --include {victim.reference} "
        "once you have confirmed it is the same person's." in result.stderr
    )
    logged = db.session.scalars(sa.select(AccessLog.lead_id).filter_by(action="patient_export")).all()
    assert logged == [other.id]
    # Named by its address, the same.
    by_address = runner.invoke(args=["privacy", "export", "EVE@example.org"])
    assert [r["reference"] for r in json.loads(by_address.stdout)["requests"]] == [other.reference]


def test_the_cli_exports_a_linked_request_only_when_included_and_refuses_one_not_linked(
    app, taxonomy, runner
):
    victim, other = _phone_borrowed()
    _lead(email="someone.else@example.org")

    included = runner.invoke(
        args=["privacy", "export", other.reference, "--include", victim.reference.lower()]
    )

    assert included.exit_code == 0, included.output
    references = [r["reference"] for r in json.loads(included.stdout)["requests"]]
    assert references == [victim.reference, other.reference] and "Left out" not in included.stderr
    db.session.execute(sa.delete(AccessLog))
    db.session.commit()
    refused = runner.invoke(args=["privacy", "export", other.reference, "--include", "Q-ZZZZZZ"])
    assert refused.exit_code == 1 and refused.stdout == ""
    assert (
        "Not among the patient's linked requests: Q-ZZZZZZ. Nothing was exported. "
        f"The linked requests: {victim.reference}, {other.reference}." in refused.stderr
    )
    assert db.session.scalars(sa.select(AccessLog)).all() == []


def test_the_cli_says_clearly_when_nothing_is_held(app, taxonomy, runner):
    result = runner.invoke(args=["privacy", "export", "Q-ZZZZZZ"])
    assert result.exit_code != 0
    assert "No request has the reference 'Q-ZZZZZZ'" in result.output
    result = runner.invoke(args=["privacy", "erase", "nobody@example.org", "--yes"])
    assert result.exit_code != 0
    assert "We hold no personal data under 'nobody@example.org'" in result.output


def test_the_cli_erasure_asks_first_and_erases_nothing_on_no(app, taxonomy, runner):
    lead = _lead()
    result = runner.invoke(args=["privacy", "erase", lead.reference], input="n\n")
    assert result.exit_code != 0 and "Nothing was erased" in result.output
    # Each request listed with whom it names, to spot one linked by a shared phone number.
    assert f"  {lead.reference}  {lead.full_name} <{lead.email}> {lead.phone}\n" in result.output
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).anonymised_at is None

    result = runner.invoke(args=["privacy", "erase", lead.reference], input="y\n")
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    erased = db.session.get(Lead, lead.id)
    assert erased.anonymised_at is not None and erased.full_name == "" and erased.email == ""
    record = db.session.scalars(sa.select(ErasureRecord)).one()
    assert (record.door, record.references, record.user_id) == ("command_line", [lead.reference], None)


def test_the_cli_erases_nothing_when_a_request_arrives_while_the_operator_reads_the_list(
    app, taxonomy, runner, monkeypatch
):
    lead = _lead(email="mia@example.org")
    arrived = []

    def a_request_arrives_then_yes(*args, **kwargs):
        arrived.append(_lead(email="mia@example.org"))
        return True

    monkeypatch.setattr("click.confirm", a_request_arrives_then_yes)
    result = runner.invoke(args=["privacy", "erase", lead.reference])

    assert result.exit_code != 0
    assert f"in 1 request(s):\n  {lead.reference}  " in result.output
    assert f"new: {arrived[0].reference}" in result.output and "Nothing was erased" in result.output
    db.session.expire_all()
    assert db.session.scalars(sa.select(Lead.anonymised_at)).all() == [None, None]
    assert db.session.scalars(sa.select(ErasureRecord)).all() == []


def test_the_cli_says_so_when_the_patient_was_erased_while_the_operator_read_the_list(
    app, taxonomy, runner, monkeypatch
):
    lead = _lead(email="mia@example.org")

    def erased_meanwhile_then_yes(*args, **kwargs):
        privacy.erase_patient(lead.reference, user_id=None, door=privacy.DEADLINE)
        return True

    monkeypatch.setattr("click.confirm", erased_meanwhile_then_yes)
    result = runner.invoke(args=["privacy", "erase", lead.reference])

    assert result.exit_code == 1 and not isinstance(result.exception, privacy.PatientNotFound)
    assert f"We hold no personal data under '{lead.reference}'" in result.output
    assert len(db.session.scalars(sa.select(ErasureRecord)).all()) == 1


def _shown(html: str) -> str:
    """The references the erasure page's form carries (those it listed)."""
    field = html[html.index('name="erase-shown"') :]
    return field[field.index('value="') + 7 : field.index('">')]


def test_an_admin_erases_from_the_lead_page_and_the_page_shows_it_erased(app, taxonomy):
    lead = _lead(full_name="Ingrid Canaryson")
    client, admin = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/erase"
    assert f'href="{path}"' in client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    shown = _shown(client.get(path).get_data(as_text=True))
    assert shown == lead.reference

    refused = client.post(path, data={"erase-shown": shown})
    assert refused.status_code == 400 and "Tick the box to confirm the erasure" in refused.get_data(
        as_text=True
    )
    done = client.post(path, data={"erase-confirm": "y", "erase-shown": shown}, follow_redirects=True)

    assert done.status_code == 200
    body = done.get_data(as_text=True)
    assert "personal data was erased" in body and "Erased" in body and "Ingrid Canaryson" not in body
    assert db.session.scalars(sa.select(ErasureRecord.user_id)).one() == admin.id
    after = client.get(path)
    assert after.status_code == 409 and "We hold no personal data" in after.get_data(as_text=True)


def test_before_erasing_the_admin_sees_every_request_it_will_erase_and_the_views_are_logged(app, taxonomy):
    lead = _lead(email="mia@example.org", phone="+4520111111", created_at=utcnow() - timedelta(days=9))
    by_email = _lead(email="MIA@example.org", phone="+4520222222", status="routed")
    by_phone = _lead(email="mia.work@example.org", phone="+4520111111", status="closed_lost")
    duplicate = _lead(email="m.hansen@example.org", phone="+4520333333", duplicate_of=by_email)
    _lead(email="someone.else@example.org")
    expected = [lead, by_email, by_phone, duplicate]
    assert privacy.patient_leads(lead.reference) == expected  # the one rule the erasure follows
    client, admin = signed_in_client(app, Role.ADMIN)

    response = client.get(f"/staff/leads/{lead.id}/privacy/erase")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _shown(html) == " ".join(other.reference for other in expected)
    table = html[html.index("Requests that will be erased") : html.index("</table>")]
    assert table.count("<tr>") == 1 + len(expected)
    for other in expected:
        assert f'href="/staff/leads/{other.id}">{other.reference}</a>' in table
    assert "Routed" in table and "Closed" in table and lead.treatment.name in table
    # Whom each request names, so that a request linked by a shared phone number stands out.
    for other in expected:
        assert f"<td><bdi>{other.full_name}</bdi></td>" in table and f"<td>{other.email}</td>" in table
        assert f"<td>{phone_for_reading(other.phone)}</td>" in table  # +45 20 11 11 11
    assert f"{lead.created_at.astimezone(ZoneInfo('Europe/Copenhagen')):%Y-%m-%d %H:%M}" in table
    logged = db.session.execute(
        sa.select(AccessLog.user_id, AccessLog.lead_id, AccessLog.action, AccessLog.detail)
    )
    listed = '{"what":"listed_for_erasure"}'
    assert sorted(logged) == sorted((admin.id, other.id, "view", listed) for other in expected)


def test_an_erasure_confirmed_on_a_list_that_has_changed_since_erases_nothing_and_shows_the_new_list(
    app, taxonomy
):
    lead = _lead(email="mia@example.org")
    client, _ = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/erase"
    shown = _shown(client.get(path).get_data(as_text=True))
    arrived = _lead(email="mia@example.org")  # the patient writes again while the admin reads

    refused = client.post(path, data={"erase-confirm": "y", "erase-shown": shown})

    html = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "requests changed after the list was shown, so nothing was erased" in html
    assert f"New since: {arrived.reference}." in html
    db.session.expire_all()
    assert [other.anonymised_at for other in db.session.scalars(sa.select(Lead))] == [None, None]
    assert db.session.scalars(sa.select(ErasureRecord)).all() == []
    assert db.session.scalars(sa.select(AccessLog.action).filter_by(action="erasure")).all() == []
    # The page shown with the refusal lists the requests as they are now, the box unticked.
    assert _shown(html) == f"{lead.reference} {arrived.reference}"
    checkbox = html[html.index('<input id="erase-confirm"') :]
    assert "checked" not in checkbox[: checkbox.index(">")]
    done = client.post(path, data={"erase-confirm": "y", "erase-shown": _shown(html)})
    assert done.status_code == 302
    assert db.session.scalars(sa.select(ErasureRecord.references)).one() == [
        lead.reference,
        arrived.reference,
    ]


def test_an_erasure_whose_list_lost_a_request_since_or_never_had_one_is_refused(app, taxonomy):
    lead, closed = _lead(email="mia@example.org"), _lead(email="mia@example.org", status="closed_lost")
    client, _ = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/erase"
    shown = _shown(client.get(path).get_data(as_text=True))
    privacy.anonymise(closed)  # its retention period ended meanwhile
    db.session.commit()

    refused = client.post(path, data={"erase-confirm": "y", "erase-shown": shown})
    assert refused.status_code == 409
    assert f"No longer to erase: {closed.reference}." in refused.get_data(as_text=True)
    # A form without the list (a lead page opened before the erasure listed its requests).
    unlisted = client.post(path, data={"erase-confirm": "y"})
    assert unlisted.status_code == 400
    assert "Open the list of the patient" in unlisted.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).anonymised_at is None
    assert db.session.scalars(sa.select(ErasureRecord)).all() == []


def _export_form(html: str) -> dict:
    """What the export page's form sends as shown: the references listed and those ticked."""
    shown = html[html.index('name="export-shown"') :]
    ticked = [
        box.split('value="')[1].split('"')[0]
        for box in html.split('<input type="checkbox"')[1:]
        if " checked" in box[: box.index(">")]
    ]
    return {"export-shown": shown[shown.index('value="') + 7 : shown.index('">')], "export-requests": ticked}


def test_an_admin_downloads_the_patients_data_from_the_lead_page(app, taxonomy):
    lead = _lead()
    client, admin = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/export"
    assert f'href="{path}"' in client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    form = _export_form(client.get(path).get_data(as_text=True))
    assert form == {"export-shown": lead.reference, "export-requests": [lead.reference]}

    response = client.post(path, data=form)

    assert response.status_code == 200
    assert (
        response.headers["Content-Disposition"]
        == f'attachment; filename="patient-data-{lead.reference}.json"'
    )
    assert json.loads(response.data)["requests"][0]["reference"] == lead.reference


def test_the_admin_sees_every_linked_request_and_downloads_only_the_ticked_ones(app, taxonomy):
    victim, other = _phone_borrowed()
    same_address = _lead(email="EVE@example.org", phone="+4520999999")
    client, admin = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{other.id}/privacy/export"

    page = client.get(path)

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    form = _export_form(html)
    assert form["export-shown"] == f"{victim.reference} {other.reference} {same_address.reference}"
    assert form["export-requests"] == [other.reference, same_address.reference]  # the victim unticked
    table = html[html.index("Requests linked to this one") : html.index("</table>")]
    for listed in (victim, other, same_address):
        assert f"<td><bdi>{listed.full_name}</bdi></td>" in table and f"<td>{listed.email}</td>" in table
    victim_row = table[table.index(victim.reference) : table.index("</tr>", table.index(victim.reference))]
    assert "Same phone number" in victim_row
    assert (
        "Linked only by a phone number or a duplicate mark: include it only when you have confirmed it "
        "is the same person." in victim_row
    )
    assert table.count("Same email address") == 2 and table.count("Linked only by") == 1
    logged = db.session.execute(sa.select(AccessLog.lead_id, AccessLog.action, AccessLog.detail)).all()
    assert sorted(logged) == sorted(
        (r.id, "view", '{"what":"listed_for_export"}') for r in (victim, other, same_address)
    )

    downloaded = client.post(path, data=form)

    assert downloaded.status_code == 200
    exported = [r["reference"] for r in json.loads(downloaded.data)["requests"]]
    assert exported == [other.reference, same_address.reference] and b"Vera Victim" not in downloaded.data
    exports = db.session.scalars(sa.select(AccessLog.lead_id).filter_by(action="patient_export")).all()
    assert sorted(exports) == sorted([other.id, same_address.id])
    # Ticked by the admin, who confirmed it is the same person.
    chosen = client.post(path, data={**form, "export-requests": [victim.reference, other.reference]})
    assert [r["reference"] for r in json.loads(chosen.data)["requests"]] == [
        victim.reference,
        other.reference,
    ]


def test_an_export_whose_list_changed_since_it_was_shown_exports_nothing_and_shows_the_new_list(
    app, taxonomy
):
    lead = _lead(email="mia@example.org")
    client, _ = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/export"
    form = _export_form(client.get(path).get_data(as_text=True))
    arrived = _lead(email="someone@example.org", phone=lead.phone)  # linked by the phone, meanwhile

    refused = client.post(path, data=form)

    html = refused.get_data(as_text=True)
    assert refused.status_code == 409 and refused.mimetype == "text/html"
    assert "requests changed after the list was shown, so nothing was exported" in html
    assert f"New since: {arrived.reference}." in html
    assert db.session.scalars(sa.select(AccessLog).filter_by(action="patient_export")).all() == []
    assert _export_form(html) == {
        "export-shown": f"{lead.reference} {arrived.reference}",
        "export-requests": [lead.reference],
    }


def test_an_export_with_nothing_ticked_or_a_request_not_linked_is_refused(app, taxonomy):
    lead = _lead(email="mia@example.org")
    stranger = _lead(email="someone.else@example.org")
    client, _ = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/export"
    form = _export_form(client.get(path).get_data(as_text=True))

    nothing = client.post(path, data={**form, "export-requests": []})
    assert nothing.status_code == 400
    assert "Tick at least one request to export" in nothing.get_data(as_text=True)
    forged = client.post(path, data={**form, "export-requests": [lead.reference, stranger.reference]})
    assert forged.status_code == 400
    assert (
        f"Not among the patient&#39;s linked requests: {stranger.reference}. Nothing was exported."
        in forged.get_data(as_text=True)
    )
    unlisted = client.post(path, data={"export-requests": [lead.reference]})
    assert unlisted.status_code == 400
    assert "Open the list of the patient" in unlisted.get_data(as_text=True)
    assert db.session.scalars(sa.select(AccessLog).filter_by(action="patient_export")).all() == []


QUEUE_VIEW = "/staff/leads?status=new&country=NO&after=3.1795937214517094.14"


def _carried(url: str) -> str | None:
    """The queue view a link, a form's action or a redirect carries (`back`), or None."""
    return parse_qs(urlsplit(html_module.unescape(url)).query).get("back", [None])[0]


def _privacy_page_urls(page: str, lead: Lead) -> list[str]:
    """The way back to the lead page and the form's action on the export or erasure page."""
    back = re.search(r'<a href="([^"]*)">Back to request ' + lead.reference + "</a>", page)
    action = re.search(rf'<form method="post" action="(/staff/leads/{lead.id}/privacy/[^"]*)"', page)
    assert back and action, page
    return [back.group(1), action.group(1)]


@pytest.mark.parametrize("kind", ["export", "erase"])
def test_the_export_and_erasure_pages_carry_the_queue_view_the_lead_page_came_from(app, taxonomy, kind):
    """Opened from a lead page reached from a filtered queue view: the page's way back, its form
    and the page shown again after a refusal carry that view, so "Back to request …" and the
    lead page after an erasure still go back to it."""
    lead = _lead(email="mia@example.org")
    client, _ = signed_in_client(app, Role.ADMIN)
    page = client.get(f"/staff/leads/{lead.id}", query_string={"back": QUEUE_VIEW}).get_data(as_text=True)
    link = re.search(rf'href="(/staff/leads/{lead.id}/privacy/{kind}[^"]*)"', page)
    assert link and _carried(link.group(1)) == QUEUE_VIEW

    opened = client.get(html_module.unescape(link.group(1))).get_data(as_text=True)
    urls = _privacy_page_urls(opened, lead)
    assert [_carried(url) for url in urls] == [QUEUE_VIEW, QUEUE_VIEW]
    listed = html_module.unescape(re.search(r'<a href="([^"]*)">' + lead.reference + "</a>", opened)[1])
    assert _carried(listed) == QUEUE_VIEW

    action = html_module.unescape(urls[1])
    if kind == "export":
        refused = client.post(action, data={**_export_form(opened), "export-requests": []})
    else:
        refused = client.post(action, data={"erase-shown": _shown(opened)})  # the box not ticked
    assert refused.status_code == 400
    again = refused.get_data(as_text=True)
    assert [_carried(url) for url in _privacy_page_urls(again, lead)] == [QUEUE_VIEW, QUEUE_VIEW]
    if kind == "erase":
        done = client.post(action, data={"erase-confirm": "y", "erase-shown": _shown(again)})
        assert done.status_code == 302 and _carried(done.headers["Location"]) == QUEUE_VIEW
        shown = client.get(done.headers["Location"]).get_data(as_text=True)
        way_back = re.search(r'<a href="([^"]*)">Back to the queue</a>', shown)
        assert way_back and html_module.unescape(way_back.group(1)) == QUEUE_VIEW


@pytest.mark.parametrize(
    "elsewhere", ["https://example.org/staff/leads", "//example.org/staff/leads", "/staff/users"]
)
def test_the_export_and_erasure_pages_carry_only_a_queue_view(app, taxonomy, elsewhere):
    """A `back` that is not a queue URL (another site, another staff page) is never carried on:
    not in the links, not in the forms, not in the return after an erasure."""
    lead = _lead()
    client, _ = signed_in_client(app, Role.ADMIN)
    for kind in ("export", "erase"):
        path = f"/staff/leads/{lead.id}/privacy/{kind}"
        page = client.get(path, query_string={"back": elsewhere}).get_data(as_text=True)
        assert [_carried(url) for url in _privacy_page_urls(page, lead)] == [None, None]
        assert "back=" not in page
    page = client.get(f"/staff/leads/{lead.id}/privacy/erase").get_data(as_text=True)
    done = client.post(
        f"/staff/leads/{lead.id}/privacy/erase",
        query_string={"back": elsewhere},
        data={"erase-confirm": "y", "erase-shown": _shown(page)},
    )
    assert done.status_code == 302 and urlsplit(done.headers["Location"]).path == f"/staff/leads/{lead.id}"
    assert _carried(done.headers["Location"]) is None


def test_a_coordinator_can_neither_export_nor_erase_and_the_attempt_is_logged(app, taxonomy):
    lead = _lead()
    client, coordinator = signed_in_client(app, Role.COORDINATOR)

    assert client.get(f"/staff/leads/{lead.id}/privacy/export").status_code == 403
    assert client.post(f"/staff/leads/{lead.id}/privacy/export", data={}).status_code == 403
    assert client.get(f"/staff/leads/{lead.id}/privacy/erase").status_code == 403
    erase = {"erase-confirm": "y", "erase-shown": lead.reference}
    assert client.post(f"/staff/leads/{lead.id}/privacy/erase", data=erase).status_code == 403

    db.session.expire_all()
    assert db.session.get(Lead, lead.id).anonymised_at is None
    refused = db.session.scalars(sa.select(AccessLog).filter_by(action="refused")).all()
    assert [(r.user_id, json.loads(r.detail)["path"]) for r in refused] == [
        (coordinator.id, f"/staff/leads/{lead.id}/privacy/export"),
        (coordinator.id, f"/staff/leads/{lead.id}/privacy/export"),
        (coordinator.id, f"/staff/leads/{lead.id}/privacy/erase"),
        (coordinator.id, f"/staff/leads/{lead.id}/privacy/erase"),
    ]
    admin_client, _ = signed_in_client(app, Role.ADMIN)
    log_page = admin_client.get("/staff/admin/access-log").get_data(as_text=True)
    assert "Refused" in log_page


def test_a_patients_erasure_request_is_a_task_with_a_due_date_in_the_queue(app, taxonomy):
    lead = _lead()
    request_erasure(lead.id)
    client, _ = signed_in_client(app, Role.COORDINATOR)

    page = client.get("/staff/leads?erasure=y").get_data(as_text=True)

    due = db.session.get(Lead, lead.id).erasure_requested_at + timedelta(days=28)
    shown = due.astimezone(ZoneInfo("Europe/Copenhagen"))  # the reader's zone, by default Danish
    assert lead.reference in page and f"Erasure due {shown:%Y-%m-%d %H:%M %Z}" in page
    assert "Erasure requests: 1" in page


def test_withdrawal_tells_each_provider_that_received_the_request_not_to_contact_the_patient(app, taxonomy):
    lead = _routed_and_sent()
    received = {
        e.to_address
        for e in db.session.scalars(sa.select(EmailMessage).filter_by(status="sent"))
        if e.template.startswith("provider_notification")
    }
    assert received

    withdraw_consent(lead.id)

    notices = sa.select(EmailMessage).filter_by(template="notice_provider_withdrawn")
    # Rendered by the worker that sends them.
    assert {deliver_email(notice.id) for notice in db.session.scalars(notices)} == {"sent"}
    db.session.expire_all()
    notices = db.session.scalars(notices).all()
    assert {n.to_address for n in notices} == received
    assert all(lead.reference in n.body_text and lead.full_name not in n.body_text for n in notices)


def _provider_email(assignment, kind: str, status: str) -> EmailMessage:
    """The notification or reminder about the assignment, queued as routing or escalation does,
    then in `status`."""
    queue_provider_emails(assignment, kind, **({"expires_at": utcnow()} if kind == "reminder" else {}))
    prefix = f"{KEY_PREFIXES[kind]}:{assignment.id}:"
    email = db.session.scalar(sa.select(EmailMessage).where(EmailMessage.idempotency_key.startswith(prefix)))
    email.status = status
    db.session.commit()
    return email


def _sent_again(email: EmailMessage, status: str) -> EmailMessage:
    """A coordinator's "Send again" of a failed email, then in `status`."""
    resend_email(email.lead_id, email.id, UserFactory().id)
    copy = db.session.scalar(
        sa.select(EmailMessage).where(EmailMessage.idempotency_key.startswith(f"resend:{email.id}:"))
    )
    copy.status = status
    db.session.commit()
    return copy


def _clinics_reached_only_by_a_resend_or_a_reminder():
    """A lead offered to three clinics: one whose notification failed and whose resend of a failed
    resend went out, one whose notification is still queued but whose reminder went out, and one
    whose notification failed and nothing else was sent."""
    lead = _lead(status="routed")
    resent, reminded, unreached = (
        AssignmentFactory(lead=lead, rank=rank, provider=ProviderFactory(notification_emails=[address]))
        for rank, address in enumerate(["resent@example.dk", "reminded@example.dk", "never@example.dk"], 1)
    )
    db.session.commit()
    failed = _sent_again(_provider_email(resent, "notification", "failed"), "failed")
    _sent_again(failed, "sent")
    _provider_email(reminded, "notification", "queued")
    _provider_email(reminded, "reminder", "sent")
    _provider_email(unreached, "notification", "failed")
    return lead, {f"{resent.id}:resent@example.dk", f"{reminded.id}:reminded@example.dk"}


def _notice_keys(template: str) -> list[str]:
    return sorted(db.session.scalars(sa.select(EmailMessage.idempotency_key).filter_by(template=template)))


def test_erasure_tells_a_clinic_that_got_the_request_only_through_a_resend_or_a_reminder(app, taxonomy):
    lead, reached = _clinics_reached_only_by_a_resend_or_a_reminder()

    privacy.erase_patient(lead.reference, user_id=None, door=privacy.COMMAND_LINE)

    assert _notice_keys("notice_provider_erasure") == sorted(f"erasure:{key}" for key in reached)


def test_withdrawal_tells_a_clinic_that_got_the_request_only_through_a_resend_or_a_reminder_once(
    app, taxonomy
):
    lead, reached = _clinics_reached_only_by_a_resend_or_a_reminder()

    assert withdraw_consent(lead.id)
    assert privacy.notify_providers_of_withdrawal(db.session.get(Lead, lead.id)) == 2

    assert _notice_keys("notice_provider_withdrawn") == sorted(f"withdrawn:{key}" for key in reached)


def _erased_references(identifier: str) -> list[str]:
    return privacy.erase_patient(identifier, user_id=None, door=privacy.COMMAND_LINE).references


def test_erasure_by_email_finds_the_requests_with_the_same_phone_and_another_email(app, taxonomy):
    first = _lead(email="mia@example.org", phone="+4520111111")
    second = _lead(email="mia.work@example.org", phone="+4520111111")
    stranger = _lead(email="someone.else@example.org")

    assert _erased_references("MIA@example.org") == [first.reference, second.reference]
    db.session.expire_all()
    assert db.session.get(Lead, stranger.id).anonymised_at is None


def test_an_address_with_letters_beyond_a_to_z_finds_the_patients_requests_and_emails_in_any_case(
    app, taxonomy
):
    """By the stored keys (`email_key`): the database's lower() changes A to Z only (SQLite's)."""
    first = _lead(email="ØRSTED@example.org", phone="+4520111111")
    second = _lead(email="øRSTED@EXAMPLE.org", phone="+4520222222")
    stranger = _lead(email="orsted@example.org", phone="+4520333333")
    email = EmailMessageFactory(
        lead_id=second.id, to_address="Ørsted@example.org", template="patient_quote", subject="Your quote"
    )
    db.session.commit()

    found = privacy.patient_leads("ørsted@EXAMPLE.ORG")
    assert [lead.reference for lead in found] == [first.reference, second.reference]
    own = [(request.lead.reference, request.own) for request in privacy.linked_requests(second.reference)]
    assert own == [(first.reference, True), (second.reference, True)]
    exported = privacy.export_patient(second.reference, user_id=None, chosen=[second.reference])
    [exported_second] = [r for r in exported["requests"] if r["reference"] == second.reference]
    assert [e["subject"] for e in exported_second["emails_to_you"]] == ["Your quote"]
    assert _erased_references(first.reference) == [first.reference, second.reference]
    db.session.expire_all()
    assert db.session.get(EmailMessage, email.id).to_address == ""
    assert [(lead.email, lead.email_key) for lead in (first, second)] == [("", "")] * 2
    assert db.session.get(Lead, stranger.id).anonymised_at is None


def test_the_patients_requests_are_found_by_email_at_any_distance_and_by_phone_one_step(app, taxonomy):
    first = _lead(email="mia@example.org", phone="+4520111111")
    second = _lead(email="mia.work@example.org", phone="+4520111111")
    third = _lead(email="MIA.WORK@example.org", phone="+4520222222")
    _lead(email="someone.else@example.org", phone="+4520333333")
    # A number the household shares: its other member's request is not chained in through it.
    sister = _lead(email="ida@example.org", phone="+4520222222")

    found = privacy.patient_leads(first.reference)  # its phone, then that request's email
    assert [lead.reference for lead in found] == [first.reference, second.reference, third.reference]
    found = privacy.patient_leads(third.reference)  # its email and its phone, not one step further
    assert [lead.reference for lead in found] == [second.reference, third.reference, sister.reference]
    found = privacy.patient_leads("MIA.WORK@example.org")  # its requests, and their phones' (one step)
    assert [lead.reference for lead in found] == [
        first.reference, second.reference, third.reference, sister.reference
    ]  # fmt: skip


def test_requests_marked_duplicates_are_found_both_ways_even_through_an_erased_one(app, taxonomy):
    erased = _lead(email="mia@example.org", phone="+4520111111")
    privacy.erase_patient(erased.reference, user_id=None, door=privacy.COMMAND_LINE)
    # A coordinator's verdicts: the same patient, though the contact details differ.
    first = _lead(email="mia.work@example.org", phone="+4520222222", duplicate_of=erased)
    second = _lead(email="m.hansen@example.org", phone="+4520333333", duplicate_of=erased)
    later = _lead(email="mia.h@example.org", phone="+4520444444", duplicate_of=first)

    for named in (first, second, later):
        found = privacy.patient_leads(named.reference)
        assert [lead.reference for lead in found] == [first.reference, second.reference, later.reference]
    assert _erased_references(erased.reference) == [first.reference, second.reference, later.reference]


def test_retention_removes_spam_after_its_period_and_old_email_bodies_but_keeps_the_rows(app, taxonomy):
    spam = _lead(status="spam")
    recent_spam = _lead(status="spam")
    email = EmailMessage(
        idempotency_key="old",
        template="patient_confirmation",
        to_address="a@example.org",
        subject="Hi",
        body_text="Your details",
        body_html="<p>Your details</p>",
        message_id="<m1@x>",
        status="sent",
        created_at=utcnow() - timedelta(days=91),
    )
    db.session.add(email)
    db.session.execute(
        sa.update(Lead).where(Lead.id == spam.id).values(updated_at=utcnow() - timedelta(days=31))
    )
    db.session.commit()

    result = privacy.apply_retention()

    assert (result.spam_and_duplicates, result.email_bodies) == (1, 1)
    db.session.expire_all()
    assert db.session.get(Lead, spam.id).anonymised_at is not None
    assert db.session.get(Lead, recent_spam.id).anonymised_at is None
    kept = db.session.get(EmailMessage, email.id)
    assert (kept.body_text, kept.status, kept.message_id) == ("", "sent", "<m1@x>")
    assert privacy.apply_retention() == privacy.RetentionResult()


def test_retention_clears_the_servers_answer_and_a_cancelled_emails_unrendered_context(app, taxonomy):
    """A refusal often repeats the recipient's address; an email cancelled before it was rendered
    keeps no words but what would have rendered them (a clinic's link among them)."""
    old = utcnow() - timedelta(days=91)
    failed = EmailMessage(
        idempotency_key="failed", template="patient_confirmation", to_address="jane@example.org",
        subject="Hi", body_text="", body_html="", message_id="<m2@x>", status="failed", created_at=old,
        last_error="550 5.1.1 <jane@example.org>: no such user",
        last_error_data={"what": "mail_answered", "answer": {"what": "verbatim", "text": "550 <jane@…>"}},
    )  # fmt: skip
    cancelled = EmailMessage(
        idempotency_key="cancelled", template="provider_notification", to_address="clinic@example.dk",
        subject="", body_text="", body_html="", message_id="<m3@x>", status="cancelled", created_at=old,
        render_context={"template": "provider_notification", "language": "en", "context": {"link": "/p/x"}},
    )  # fmt: skip
    db.session.add_all([failed, cancelled])
    db.session.commit()

    assert privacy.apply_retention().email_bodies == 2
    db.session.expire_all()
    cleared = db.session.get(EmailMessage, failed.id)
    assert (cleared.last_error, cleared.last_error_data) == (None, None)
    assert db.session.get(EmailMessage, cancelled.id).render_context is None
    assert privacy.apply_retention() == privacy.RetentionResult()


def _old_spam(count: int) -> list[Lead]:
    leads = [_lead(status="spam") for _ in range(count)]
    db.session.execute(
        sa.update(Lead)
        .where(Lead.id.in_([lead.id for lead in leads]))
        .values(updated_at=utcnow() - timedelta(days=31))
    )
    db.session.commit()
    return leads


def test_retention_anonymises_a_batch_at_a_time_each_with_its_proof(app, taxonomy, monkeypatch):
    """A backlog (the first run after an upgrade) is never one huge transaction."""
    monkeypatch.setattr(privacy, "BATCH", 2)
    leads = _old_spam(5)

    assert privacy.apply_retention().spam_and_duplicates == 5

    proofs = db.session.scalars(sa.select(ErasureRecord).order_by(ErasureRecord.id)).all()
    assert [len(proof.references) for proof in proofs] == [2, 2, 1]
    assert sorted(r for proof in proofs for r in proof.references) == sorted(lead.reference for lead in leads)


def test_a_retention_run_begins_no_batch_after_its_time_and_the_next_run_goes_on(app, taxonomy, monkeypatch):
    """Well inside the task's soft time limit, however large the backlog: the due erasures first
    (none), the old email words (the cheapest), then (no ended or stalled request) one batch of
    spam, and the run stops."""
    monkeypatch.setattr(privacy, "BATCH", 2)
    monkeypatch.setattr(privacy, "EMAIL_BATCH", 2)
    _old_emails(3)
    _old_spam(5)
    clock = iter([0, 1, 2, 3, 4, 5, 6, 200])  # the start, then one reading before each batch
    monkeypatch.setattr(privacy.time, "monotonic", lambda: next(clock, 1000))

    first = privacy.apply_retention()

    assert (first.email_bodies, first.spam_and_duplicates) == (3, 2)
    monkeypatch.setattr(privacy.time, "monotonic", lambda: 0)
    assert privacy.apply_retention().spam_and_duplicates == 3


def test_a_retention_run_ends_after_its_most_and_the_next_run_goes_on(app, taxonomy, monkeypatch):
    monkeypatch.setattr(privacy, "BATCH", 2)
    monkeypatch.setattr(privacy, "MOST_PER_RUN", 3)
    _old_spam(5)

    assert privacy.apply_retention().spam_and_duplicates == 3
    assert privacy.apply_retention().spam_and_duplicates == 2
    assert privacy.apply_retention() == privacy.RetentionResult()


def _old_emails(count: int) -> list[EmailMessage]:
    emails = [
        EmailMessage(
            idempotency_key=f"old-{n}",
            template="patient_confirmation",
            to_address="a@example.org",
            subject="Hi",
            body_text="Your details",
            body_html="<p>Your details</p>",
            message_id=f"<old-{n}@x>",
            status="sent",
            created_at=utcnow() - timedelta(days=91),
        )
        for n in range(count)
    ]
    db.session.add_all(emails)
    db.session.commit()
    return emails


def test_retention_clears_old_email_bodies_a_batch_at_a_time_and_the_next_run_goes_on(
    app, taxonomy, monkeypatch
):
    """A backlog of old emails (the first run after an upgrade) is never one huge UPDATE."""
    monkeypatch.setattr(privacy, "EMAIL_BATCH", 2)
    monkeypatch.setattr(privacy, "EMAILS_PER_RUN", 4)
    emails = _old_emails(5)

    assert privacy.apply_retention().email_bodies == 4
    assert privacy.apply_retention().email_bodies == 1
    db.session.expire_all()
    assert {db.session.get(EmailMessage, email.id).body_text for email in emails} == {""}
    assert privacy.apply_retention() == privacy.RetentionResult()


@pytest.mark.pg_only  # SQLite has one writer at a time: no row locks to skip
@pytest.mark.commits
def test_retention_skips_the_email_rows_another_transaction_holds_and_clears_them_next_time(app, taxonomy):
    held, free = _old_emails(2)
    with db.engine.connect() as other:
        other.execute(sa.select(EmailMessage.id).where(EmailMessage.id == held.id).with_for_update())

        assert privacy.apply_retention().email_bodies == 1  # did not wait for the held row

        other.rollback()
    db.session.expire_all()
    assert (
        db.session.get(EmailMessage, free.id).body_text,
        db.session.get(EmailMessage, held.id).body_text,
    ) == (
        "",
        "Your details",
    )
    assert privacy.apply_retention().email_bodies == 1


@pytest.mark.commits
def test_two_retention_runs_at_once_anonymise_each_lead_once(app, taxonomy):
    """Two beats, or a redelivered task: the second run skips the leads the first one holds."""
    leads = [_lead(status="spam") for _ in range(20)]
    db.session.execute(
        sa.update(Lead)
        .where(Lead.id.in_([lead.id for lead in leads]))
        .values(updated_at=utcnow() - timedelta(days=31))
    )
    db.session.commit()
    results = at_once(app, lambda: privacy.apply_retention().spam_and_duplicates)

    assert sorted(results) == [0, 20]
    events = db.session.scalar(
        sa.select(sa.func.count()).select_from(LeadEvent).where(LeadEvent.kind == "anonymised")
    )
    assert events == 20
    assert len(db.session.scalars(sa.select(ErasureRecord)).all()) == 1


# Requests left open ------------------------------------------------------------------------

MONTH = timedelta(days=30)
CLOSED_BY_RETENTION = "Closed by retention: no activity for 24 months."


def _months_on(months: float):
    """The clock `months` months from now, as the retention periods count them."""
    return time_machine.travel(utcnow() + months * MONTH, tick=False)


def _retention_in(months: float) -> privacy.RetentionResult:
    result = privacy.apply_retention(now=utcnow() + months * MONTH)
    db.session.expire_all()
    return result


def _history(lead) -> list[tuple[str, str, str | None]]:
    events = db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id).order_by(LeadEvent.id))
    return [(event.kind, event.actor_type, event.to_status) for event in events]


def test_every_status_falls_under_exactly_one_retention_rule_and_an_open_one_can_be_closed():
    groups = [privacy.ENDED, privacy.JUNK, {LeadStatus.BOOKED}, privacy.STALLABLE]
    assert sorted(s for group in groups for s in group) == sorted(LeadStatus)
    assert OPEN - {LeadStatus.UNROUTABLE} == privacy.STALLABLE
    for status in privacy.STALLABLE:
        assert check_transition(status, LeadStatus.CLOSED_LOST) == LeadStatus.CLOSED_LOST


@pytest.mark.parametrize("status", sorted(OPEN - {LeadStatus.UNROUTABLE}))
def test_a_request_nobody_acted_on_for_the_stalled_period_is_closed_and_anonymised_once(
    app, taxonomy, status
):
    lead = _lead(status=status)

    assert _retention_in(23).stalled_leads == 0
    result = _retention_in(24.1)

    assert (result.stalled_leads, result.closed_leads, result.spam_and_duplicates) == (1, 0, 0)
    closed = db.session.get(Lead, lead.id)
    assert (closed.status, closed.full_name, closed.email, closed.details) == ("closed_lost", "", "", "")
    assert closed.anonymised_at is not None and describe_reason(closed.status_reason) == CLOSED_BY_RETENTION
    assert ("status_changed", "system", "closed_lost") in _history(lead)
    assert _history(lead)[-1] == ("anonymised", "system", None)
    assert db.session.scalars(sa.select(LeadEvent.note).filter_by(kind="anonymised")).all() == [
        CLOSED_BY_RETENTION
    ]
    [proof] = db.session.scalars(sa.select(ErasureRecord)).all()
    assert (proof.door, proof.references, proof.user_id) == (privacy.RETENTION, [lead.reference], None)

    history = _history(lead)
    assert _retention_in(24.1).stalled_leads == 0
    assert _history(lead) == history
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ErasureRecord)) == 1


def _a_coordinators_note(lead):
    lead_actions.add_note(lead.id, UserFactory().id, "Called the patient: still thinking.")
    db.session.commit()


def _a_change_to_the_request(lead):
    """A change to the lead's own row that writes no history entry."""
    db.session.execute(sa.update(Lead).where(Lead.id == lead.id).values(timeframe="asap"))
    db.session.commit()


def _a_repeat_of_the_request(lead):
    """The patient asked again, and a coordinator handles it with this request."""
    _lead(status="duplicate", duplicate_of_id=lead.id)


ACTIVITIES = [_a_coordinators_note, _a_change_to_the_request, _a_repeat_of_the_request]


@pytest.mark.parametrize("activity", ACTIVITIES)
def test_a_request_with_activity_in_the_period_stays_open_until_the_period_after_it(app, taxonomy, activity):
    lead = _lead(status="routed")
    with _months_on(20):
        activity(lead)

    assert _retention_in(25).stalled_leads == 0
    assert db.session.get(Lead, lead.id).status == "routed"
    assert db.session.get(Lead, lead.id).anonymised_at is None

    assert _retention_in(20 + 24.1).stalled_leads == 1
    assert db.session.get(Lead, lead.id).status == "closed_lost"


def test_ended_requests_keep_their_status_and_their_own_periods(app, taxonomy):
    ended = {status: _lead(status=status) for status in sorted(privacy.ENDED | privacy.JUNK | {"booked"})}

    result = _retention_in(25)

    assert (result.stalled_leads, result.closed_leads, result.spam_and_duplicates) == (0, 3, 2)
    for status, lead in ended.items():
        kept = db.session.get(Lead, lead.id)
        assert kept.status == status
        assert (kept.anonymised_at is None) == (status == "booked")  # booked: 24 + 12 months
        assert not any(kind == "status_changed" for kind, _, _ in _history(lead))


def test_a_coordinators_note_on_an_ended_request_keeps_it_for_the_period_after_the_note(app, taxonomy):
    """An unroutable request a coordinator still works on is not anonymised under them."""
    lead = _lead(status="unroutable")
    with _months_on(20):
        _a_coordinators_note(lead)

    assert _retention_in(25).closed_leads == 0
    assert db.session.get(Lead, lead.id).anonymised_at is None
    assert _retention_in(20 + 24.1).closed_leads == 1


def test_a_coordinators_note_keeps_a_spam_request_for_the_period_after_the_note(app, taxonomy):
    (lead,) = _old_spam(1)
    _a_coordinators_note(lead)

    assert _retention_in(0).spam_and_duplicates == 0
    assert _retention_in(1.1).spam_and_duplicates == 1


@pytest.mark.parametrize("automatic", [True, False])
def test_a_stalled_request_whose_erasure_is_asked_for_is_left_to_the_erasure(app, taxonomy, automatic):
    """The erasure also tells the clinics that received it; retention tells nobody. Carried out by
    the run when it is due, or, switched off, by an admin."""
    app.config["ERASURE_AUTOMATIC_WHEN_DUE"] = automatic
    lead = _lead(status="contacted", erasure_requested_at=utcnow())

    result = _retention_in(30)

    assert (result.stalled_leads, result.erasures) == (0, int(automatic))
    kept = db.session.get(Lead, lead.id)
    if automatic:
        assert (kept.status, _history(lead)[-1]) == ("closed_lost", ("erased", "system", None))
        assert db.session.scalars(sa.select(ErasureRecord.door)).all() == [privacy.DEADLINE]
    else:
        assert (kept.status, kept.anonymised_at) == ("contacted", None)
    assert "anonymised" not in [kind for kind, _, _ in _history(lead)]


def test_an_ended_request_whose_erasure_is_asked_for_is_left_to_the_erasure_which_tells_the_clinics(
    app, taxonomy
):
    lead = _routed_and_sent()
    lead_actions.change_status(
        lead.id, UserFactory(role=Role.COORDINATOR).id, "closed_lost", note="No answer."
    )
    request_erasure(lead.id)
    db.session.commit()

    result = _retention_in(30)
    assert (result.closed_leads, result.stalled_leads, result.erasures) == (0, 0, 1)
    assert db.session.scalars(sa.select(ErasureRecord.door)).all() == [privacy.DEADLINE]
    notices = sa.select(EmailMessage).filter_by(lead_id=lead.id, template="notice_provider_erasure")
    assert db.session.scalars(notices).all()


def test_closing_a_stalled_request_ends_what_waits_for_it_and_tells_no_clinic(app, taxonomy, client):
    """Open quotes close, waiting clinics are released, unsent emails are never sent, and no
    sweep reminds anybody afterwards; clinics are not told, as for any request that closes."""
    lead, first, second = two_clinics_accept(client)
    assert client.post(provider(first) + "/quote", data=quote_form()).status_code == 303
    clinic = ProviderFactory(notification_emails=["c@example.dk"])
    third = AssignmentFactory(lead=lead, rank=3, provider=clinic)
    db.session.commit()
    _provider_email(third, "notification", "sent")  # the third clinic received it, and has not answered
    _provider_email(third, "reminder", "queued")
    unsent = db.session.scalars(sa.select(EmailMessage).filter_by(status="queued"))
    queued = {email.id: email.template for email in unsent}
    assert {"patient_quote", "provider_reminder", "provider_notification"} <= set(queued.values())
    assert db.session.get(Lead, lead.id).status == "quoted"

    assert _retention_in(24.1).stalled_leads == 1

    assert db.session.scalar(sa.select(Quote.status).filter_by(assignment_id=first.id)) == "closed"
    assert db.session.get(Assignment, third.id).status == "closed"
    assert {db.session.get(Assignment, a.id).status for a in (first, second)} == {"accepted"}
    assert {db.session.get(EmailMessage, email_id).status for email_id in queued} == {"cancelled"}
    kinds = [kind for kind, _, _ in _history(lead)]
    assert kinds[-4:] == ["status_changed", "quotes_closed", "sharing_stopped", "anonymised"]
    emails_before = db.session.scalar(sa.select(sa.func.count()).select_from(EmailMessage))
    with _months_on(24.2):
        swept = escalate_assignments()
    assert (swept.reminded, swept.expired) == (0, 0)
    assert (swept.quotes.clinics_reminded, swept.quotes.patients_reminded) == (0, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(EmailMessage)) == emails_before
    assert not db.session.scalars(sa.select(EmailMessage).where(EmailMessage.template.like("notice_%"))).all()


def test_the_retention_task_reports_the_stalled_requests(app, taxonomy):
    from workers import tasks

    assert tasks.apply_retention()["stalled_leads"] == 0


@pytest.mark.commits
def test_two_retention_runs_at_once_close_each_stalled_request_once(app, taxonomy):
    leads = [_lead(status="routed") for _ in range(10)]
    later = utcnow() + 24.1 * MONTH

    results = at_once(app, lambda: privacy.apply_retention(now=later).stalled_leads)

    assert sorted(results) == [0, 10]
    statuses = db.session.scalars(sa.select(Lead.status).where(Lead.id.in_([lead.id for lead in leads])))
    assert set(statuses) == {"closed_lost"}
    closings = sa.select(sa.func.count()).select_from(LeadEvent).filter_by(to_status="closed_lost")
    assert db.session.scalar(closings) == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ErasureRecord)) == 1


@pytest.mark.pg_only  # SQLite has one writer at a time: no row locks to order
def test_retention_locks_a_stalled_lead_before_its_quotes_and_assignments(app, taxonomy, client):
    lead, first, _ = two_clinics_accept(client)
    client.post(provider(first) + "/quote", data=quote_form())
    order = lock_order(lambda: _retention_in(24.1))
    # (Old email words are cleared first, in batches of their own that never wait on a locked row.)
    assert order.index("lead") < min(order.index("quote"), order.index("assignment"))
    assert db.session.get(Lead, lead.id).status == "closed_lost"


@pytest.mark.pg_only  # SQLite has one writer at a time: no row locks to order
def test_erasure_locks_each_lead_before_anything_of_it(app, taxonomy):
    """As a clinic's answer does: one arriving at that moment waits, or is erased with the rest."""
    lead = _routed_and_sent()
    assert lock_order(lambda: privacy.erase_patient(lead.reference, user_id=None, door="test"))[0] == "lead"


def test_each_consent_records_the_exact_text_hash_and_language_and_the_page_shows_the_words(app, taxonomy):
    from tests.quote_support import answers, client_with_own_address

    assert client_with_own_address(app).post("/quote", data=answers(app)).status_code == 303
    lead = db.session.scalars(sa.select(Lead)).one()
    assert (lead.consent.text_hash, lead.consent.language) == (
        "89e9c918a79098334709184dae20710a9fee9b895276e37a406fe0204635c44c",
        "en",
    )
    client, _ = signed_in_client(app, Role.COORDINATOR)
    page = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert lead.consent.text_hash in page and "I agree that the quote service may share my request" in page


def test_the_privacy_notice_is_linked_from_the_form_and_says_what_a_patient_needs(app, taxonomy, client):
    form = client.get("/quote").get_data(as_text=True)
    assert 'href="/privacy"' in form
    notice = client.get("/privacy").get_data(as_text=True)
    for needed in ("explicit consent", "Datatilsynet", "24 months", "one month", "Danish clinics"):
        assert needed in notice


# What a clinic's notification says about the patient (`notification_context`), as the notice names it.
NOTICE_WORDS = {
    "treatment_name": "the treatment",
    "condition_category": "the kind of condition",
    "country_name": "country",
    "language_name": "language",
    "timeframe": "timeframe",
    "budget": "budget band",
}


def test_the_privacy_notice_names_everything_a_clinics_notification_says_about_the_patient(
    app, taxonomy, client
):
    from leads.routing.notification import notification_context
    from tests.factories import ProviderFactory

    about_the_clinic_or_link = {"provider_name", "reference", "link", "link_days"}
    context = notification_context(_lead(), ProviderFactory(), "https://example.org/p/token")
    assert set(context) - about_the_clinic_or_link == set(NOTICE_WORDS)
    notice = " ".join(client.get("/privacy").get_data(as_text=True).split())
    recipients = notice[notice.index('id="recipients"') : notice.index('id="retention"')]
    for words in NOTICE_WORDS.values():
        assert words in recipients, words


def test_the_privacy_notice_says_a_request_nobody_acts_on_is_closed_after_the_stalled_period(app, client):
    app.config["RETENTION_STALLED_MONTHS"] = 18
    notice = " ".join(client.get("/privacy").get_data(as_text=True).split())
    assert "A request still open that nobody has acted on for 18 months" in notice
    assert "is closed and anonymised" in notice


def test_every_email_to_a_patient_and_every_patient_page_links_the_privacy_notice(app, taxonomy, client):
    from leads.intake.service import confirmation_context
    from leads.messaging.email import render_email
    from leads.messaging.urls import patient_link

    lead = _lead()
    notice = f"{app.config['BASE_URL']}/privacy"
    accepted = {"reference": lead.reference, "full_name": "A", "provider_name": "P", "provider_city": "C"}
    for template, context in [
        (
            "patient_confirmation",
            confirmation_context(
                lead_id=lead.id, reference=lead.reference, preferred_language=lead.preferred_language
            ),
        ),
        ("patient_provider_accepted", accepted),
    ]:
        rendered = render_email(template, **context)
        assert notice in rendered.text and f'href="{notice}"' in rendered.html, template
    own_page = client.get(patient_link(lead.id).removeprefix(app.config["BASE_URL"])).get_data(as_text=True)
    assert 'href="/privacy"' in own_page


def test_erasure_removes_a_clinics_message_to_the_patient_but_keeps_the_price(app, taxonomy):
    from datetime import date

    from leads.models.quote import Quote, QuoteRevision
    from tests.factories import AssignmentFactory

    assignment = AssignmentFactory()
    db.session.flush()
    quote = Quote(assignment_id=assignment.id, lead_id=assignment.lead.id)
    db.session.add(quote)
    db.session.flush()
    revision = QuoteRevision(
        quote_id=quote.id, number=1, price_from=10_000, price_to=12_000, currency="EUR",
        earliest_start=date(2027, 3, 1), valid_days=30, valid_until=utcnow() + timedelta(days=30),
        message="Dear Ingrid Canaryson, we can help.",
    )  # fmt: skip
    db.session.add(revision)
    db.session.commit()

    privacy.erase_patient(assignment.lead.reference, user_id=None, door=privacy.COMMAND_LINE)

    db.session.expire_all()
    kept = db.session.get(QuoteRevision, revision.id)
    assert (kept.message, kept.price_from, kept.currency) == ("", 10_000, "EUR")


def _context_is_sql_null(email_id: int) -> bool:
    return (
        db.session.scalar(
            sa.select(sa.func.count(EmailMessage.id)).where(
                EmailMessage.id == email_id, EmailMessage.render_context.is_(None)
            )
        )
        == 1
    )


def test_erasure_removes_what_would_have_rendered_an_unsent_confirmation(app, taxonomy):
    assert client_with_own_address(app).post("/quote", data=answers(app)).status_code == 303
    lead = db.session.scalar(sa.select(Lead))
    pending = db.session.scalar(sa.select(EmailMessage).filter_by(template="patient_confirmation"))
    assert pending.render_context["context"]["reference"] == lead.reference

    privacy.erase_patient(lead.reference, user_id=None, door=privacy.COMMAND_LINE)

    db.session.expire_all()
    erased = db.session.get(EmailMessage, pending.id)
    assert erased.render_context is None and erased.status == "cancelled"
    assert _context_is_sql_null(erased.id)  # not JSON null: `IS NULL` finds it
    assert (erased.subject, erased.body_text, erased.to_address) == ("", "", "")
    assert deliver_email(erased.id) == "skipped"


def test_an_erased_open_request_is_closed_its_quotes_closed_and_its_waiting_clinics_released(
    app, taxonomy, client
):
    """Erased, a request is over: no clinic still waiting has it expire against its record later,
    no quote stays open to choose."""
    lead, first, _ = two_clinics_accept(client)
    client.post(provider(first) + "/quote", data=quote_form())
    # A third clinic was told and has not answered.
    waiting = [AssignmentFactory(lead=lead, rank=3, provider=ProviderFactory())]
    db.session.commit()

    privacy.erase_patient(lead.reference, user_id=None, door=privacy.COMMAND_LINE)

    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "closed_lost"
    assert {q.status for q in db.session.scalars(sa.select(Quote).filter_by(lead_id=lead.id))} == {"closed"}
    assert {db.session.get(Assignment, a.id).status for a in waiting} == {"closed"}
    with _months_on(1):
        assert escalate_assignments().expired == 0
    assert all(db.session.get(Provider, a.provider_id).unanswered_count == 0 for a in waiting)


def test_a_request_retention_cannot_anonymise_is_left_to_the_next_run_and_the_others_go_on(
    app, taxonomy, monkeypatch, caplog
):
    """One broken request must not stop the daily run on it every day: the rest of its batch and
    the later rules go on, the run counts the failure, and the log names the lead by id only."""
    monkeypatch.setattr(privacy, "BATCH", 2)
    first, broken, third = _old_spam(3)
    real_anonymise = privacy.anonymise

    def fails_for_one(lead):
        if lead.id == broken.id:
            raise KeyError(lead.full_name)  # as a message naming an unknown placeholder would
        real_anonymise(lead)

    monkeypatch.setattr(privacy, "anonymise", fails_for_one)
    result = privacy.apply_retention()

    assert (result.spam_and_duplicates, result.failed) == (2, 1)
    db.session.expire_all()
    assert [db.session.get(Lead, lead.id).anonymised_at is not None for lead in (first, broken, third)] == [
        True,
        False,
        True,
    ]
    assert f"lead {broken.id}: retention could not anonymise it (KeyError)" in caplog.text
    assert broken.full_name not in caplog.text
    monkeypatch.setattr(privacy, "anonymise", real_anonymise)
    assert privacy.apply_retention() == privacy.RetentionResult(spam_and_duplicates=1)
    assert db.session.get(Lead, broken.id).anonymised_at is not None


def test_the_cli_run_of_retention_counts_the_requests_that_failed(app, taxonomy, runner, monkeypatch):
    [broken] = _old_spam(1)
    monkeypatch.setattr(privacy, "anonymise", lambda lead: 1 / 0)

    result = runner.invoke(args=["privacy", "retention", "--apply"])

    assert result.exit_code == 0, result.output
    assert "requests that failed (logged by lead id; the next run tries again): 1" in result.output
    assert broken.full_name not in result.output


def _notice_fails_to_render(monkeypatch, reference: str) -> None:
    """The erasure notice about `reference` cannot be made (a translation naming an unknown
    placeholder, say); every other email renders."""
    real_render = email_module.render_email

    def render(template, language="en", **context):
        if template == "notice_provider_erasure" and context.get("reference") == reference:
            raise KeyError("clinic")
        return real_render(template, language, **context)

    monkeypatch.setattr(email_module, "render_email", render)


def test_an_erasure_notice_that_cannot_be_made_fails_alone_and_the_admins_erasure_is_done(
    app, taxonomy, monkeypatch
):
    lead = _routed_and_sent()
    _notice_fails_to_render(monkeypatch, lead.reference)
    client, _ = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/erase"
    shown = _shown(client.get(path).get_data(as_text=True))

    done = client.post(path, data={"erase-confirm": "y", "erase-shown": shown})

    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).anonymised_at is not None
    notices = sa.select(EmailMessage.id).filter_by(lead_id=lead.id, template="notice_provider_erasure")
    ids = db.session.scalars(notices).all()
    assert ids and {deliver_email(email_id) for email_id in ids} == {"failed"}


def test_an_erasure_that_stops_on_an_error_shows_why_and_erases_nothing(app, taxonomy, monkeypatch, caplog):
    lead = _routed_and_sent()
    other = _lead(email=lead.email)
    client, _ = signed_in_client(app, Role.ADMIN)
    path = f"/staff/leads/{lead.id}/privacy/erase"
    shown = _shown(client.get(path).get_data(as_text=True))
    real_anonymise = privacy.anonymise

    def fails_on_the_second(erased):
        if erased.id == other.id:
            raise KeyError(erased.full_name)
        real_anonymise(erased)

    monkeypatch.setattr(privacy, "anonymise", fails_on_the_second)
    refused = client.post(path, data={"erase-confirm": "y", "erase-shown": shown})

    assert refused.status_code == 409
    assert "The erasure stopped on an error, so nothing was erased." in refused.get_data(as_text=True)
    assert f"erasure of lead(s) [{lead.id}, {other.id}] failed (KeyError)" in caplog.text
    db.session.expire_all()
    assert db.session.scalars(sa.select(Lead.anonymised_at)).all() == [None, None]
    assert db.session.scalars(sa.select(ErasureRecord)).all() == []
    assert db.session.scalars(sa.select(AccessLog.action).filter_by(action="erasure")).all() == []
    erased_events = sa.select(LeadEvent).filter_by(kind="erased")
    assert db.session.scalars(erased_events).all() == []
    assert (
        db.session.scalars(sa.select(EmailMessage).filter_by(template="notice_provider_erasure")).all() == []
    )

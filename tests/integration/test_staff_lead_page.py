"""The lead page: everything about a lead on one page, every view logged, and the actions a
coordinator takes from it (notes, status, assignment, duplicate, spam, resending an email)."""

import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from leads.consent import SOURCE_QUOTE_FORM
from leads.extensions import db
from leads.messaging.outbox import SEND_EMAILS, SEND_PROVIDER_EMAILS
from leads.models import AccessLog, Consent, EmailMessage, Lead, LeadEvent, OutboxMessage, Role
from leads.staff import lead_actions
from tests.factories import AssignmentFactory, EmailMessageFactory, LeadFactory, ProviderFactory
from tests.helpers import at_once, count_rows
from tests.staff_support import ago, make_staff, signed_in_client

# Lead page actions lock the lead row (FOR UPDATE on PostgreSQL).
pytestmark = pytest.mark.pg


@pytest.fixture
def coordinator(app, taxonomy):
    return signed_in_client(app, Role.COORDINATOR)


def _lead(**fields) -> Lead:
    lead = LeadFactory(**fields)
    db.session.commit()
    return lead


def _events(lead: Lead, kind: str | None = None) -> list[LeadEvent]:
    query = sa.select(LeadEvent).filter_by(lead_id=lead.id).order_by(LeadEvent.id)
    if kind:
        query = query.filter_by(kind=kind)
    return list(db.session.scalars(query))


def test_the_lead_page_shows_what_the_patient_sent_and_their_consent(coordinator):
    client, _ = coordinator
    lead = LeadFactory(
        full_name="Freja Ørsted", details="Injured at C6 <b>two</b> years ago.", utm_source="magazine",
        utm_campaign="spring", injury_level="C6",
    )  # fmt: skip
    db.session.add(
        Consent(
            lead=lead,
            text_version="2025-01",
            share_with_providers=True,
            contact=False,
            source_form=SOURCE_QUOTE_FORM,
        )
    )
    db.session.commit()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert lead.reference in html
    assert "Freja Ørsted" in html and lead.email in html and lead.phone in html
    assert "Injured at C6 &lt;b&gt;two&lt;/b&gt; years ago." in html  # shown, never interpreted
    assert "magazine / — / spring" in html
    assert "2025-01" in html
    # Where it was given in words, not the stored code.
    assert "Given through</dt><dd>The public quote form" in html and SOURCE_QUOTE_FORM not in html
    assert "Share with matched providers</dt><dd>Yes" in html and "May be contacted</dt><dd>No" in html


def test_the_patients_phone_number_reads_in_groups_and_dials_as_stored(coordinator):
    """+49301234567 is hard to read back on the phone: shown as +49 30 1234567, its link E.164."""
    client, _ = coordinator
    lead = LeadFactory(phone="+49301234567", country="DE")
    db.session.commit()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert '<a href="tel:+49301234567">+49 30 1234567</a>' in html
    db.session.refresh(lead)
    assert lead.phone == "+49301234567"


@pytest.mark.parametrize(
    ("taken_after_hours", "said"),
    [
        (5, r"SLA</dt><dd>Met: taken in hand \d{4}-\d\d-\d\d \d\d:\d\d \w+\.</dd>"),
        (30, r"SLA</dt><dd>Missed: taken in hand [^,]+, 6 hr after the due time\.</dd>"),
    ],
)
def test_a_booked_leads_sla_clock_has_stopped_met_or_missed_and_shows_no_due_time(
    coordinator, taken_after_hours, said
):
    """Booked long after its due time: no "SLA due" left to watch, no overdue mark, on the lead page
    or in the queue; the page says whether the clock stopped in time, as the stats count it."""
    client, _ = coordinator
    received = ago(days=3)
    lead = LeadFactory(status="booked", created_at=received, sla_due_at=received + timedelta(hours=24))
    for before, after, hours in (("new", "routed", 0), ("routed", "contacted", taken_after_hours)):
        event = lead.add_event("status_changed", actor_type="system", from_status=before, to_status=after)
        event.created_at = received + timedelta(hours=hours)
    db.session.commit()
    html = " ".join(client.get(f"/staff/leads/{lead.id}").get_data(as_text=True).split())
    assert re.search(said, html), html[html.index("Received") : html.index("Assigned to")]
    assert "SLA due" not in html and "SLA overdue" not in html
    queue = client.get("/staff/leads").get_data(as_text=True)
    row = queue[queue.index(lead.reference) :].split("</tr>", 1)[0]
    assert row.rstrip().endswith("<td>—</td>") and "Overdue" not in row


def test_every_view_of_a_lead_is_written_to_the_access_log(coordinator):
    client, user = coordinator
    lead = _lead()
    client.get(f"/staff/leads/{lead.id}")
    client.get(f"/staff/leads/{lead.id}")
    entries = db.session.scalars(sa.select(AccessLog)).all()
    assert [(e.user_id, e.lead_id, e.action) for e in entries] == [(user.id, lead.id, "view")] * 2


def test_a_missing_lead_is_a_404_and_logs_nothing(coordinator):
    client, _ = coordinator
    assert client.get("/staff/leads/424242").status_code == 404
    assert count_rows(AccessLog) == 0


def test_assignments_show_status_score_breakdown_and_response_times(coordinator):
    client, _ = coordinator
    lead = _lead(status="routed")
    notified = ago(hours=5)
    AssignmentFactory(
        lead=lead, provider=ProviderFactory(name="Odense Neuro (demo)"), status="accepted",
        created_at=notified,
        viewed_at=notified + timedelta(minutes=20), responded_at=notified + timedelta(hours=2, minutes=5),
    )  # fmt: skip
    AssignmentFactory(
        lead=lead, provider=ProviderFactory(name="Aalborg Ortho (demo)"), rank=2, status="declined",
        decline_reason="no_capacity", created_at=notified, responded_at=notified + timedelta(days=1, hours=3),
    )  # fmt: skip
    db.session.commit()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "Odense Neuro (demo)" in html and "Aalborg Ortho (demo)" in html
    assert "Accepted" in html and "Declined: no capacity at the moment" in html
    assert "20 min" in html and "2 hr, 5 min" in html and "1 day, 3 hr" in html
    # The factory stores a breakdown as it was before the engine kept codes: shown as it holds.
    assert "speaks en" in html and "30.0 / 30" in html


@pytest.mark.parametrize(
    ("language", "score", "points"), [("en", "72.5", "12.5 / 20"), ("da", "72,5", "12,5 / 20")]
)
def test_the_score_and_its_points_are_written_as_the_readers_language_writes_decimals(
    app, taxonomy, language, score, points
):
    client, _ = signed_in_client(app, Role.COORDINATOR, language=language)
    lead = _lead(status="routed")
    breakdown = {
        "score": 72.5,
        "components": [{"name": "language", "points": 12.5, "max": 20.0, "detail": "speaks en"}],
    }
    AssignmentFactory(lead=lead, score=72.5, score_breakdown=breakdown)
    db.session.commit()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert re.search(rf"<td>{re.escape(score)}\s*<details>", html)
    assert f'<td class="num">{points}</td>' in html


def test_a_danish_reader_sees_a_language_capitalised_as_an_answer_and_lower_case_in_a_sentence(app, taxonomy):
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = LeadFactory(preferred_language="ar")
    db.session.add(
        Consent(
            lead=lead, text_version="2025-01", language="ar", share_with_providers=True, contact=True,
            source_form="quote",
        )
    )  # fmt: skip
    db.session.commit()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "<dd>Arabisk (ar)</dd>" in html  # the preferred language, an answer of its own
    assert "2025-01, vist på arabisk (ar)" in html  # the consent's, inside a sentence


def test_a_danish_coordinator_reads_response_times_in_danish_units(app, taxonomy):
    client, _ = signed_in_client(app, Role.COORDINATOR, language="da")
    lead = _lead(status="routed")
    notified = ago(days=2)
    AssignmentFactory(
        lead=lead, status="accepted", created_at=notified,
        viewed_at=notified + timedelta(minutes=20), responded_at=notified + timedelta(days=1, hours=3),
    )  # fmt: skip
    db.session.commit()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "20 min." in html and "1 dag og 3 t." in html


def test_a_coordinator_adds_a_note_and_sees_it_in_the_timeline(coordinator):
    client, user = coordinator
    lead = _lead()
    response = client.post(
        f"/staff/leads/{lead.id}/notes", data={"note-note": "Called the patient, no answer."}
    )
    assert response.status_code == 302
    # No fragment: it would keep the browser from focusing the result, shown beside the timeline.
    assert response.headers["Location"].endswith(f"/staff/leads/{lead.id}")
    [event] = _events(lead, "note")
    assert (event.actor_type, event.actor_user_id, event.note) == (
        "staff",
        user.id,
        "Called the patient, no answer.",
    )
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "Called the patient, no answer." in html and user.email in html
    result = re.search(r'<div class="flashes" id="result" role="status" tabindex="-1" autofocus[^>]*>', html)
    assert result and "Note added." in html
    assert html.index('id="timeline"') < result.start() < html.index('id="timeline-title"')
    assert html.count("autofocus") == 1
    assert "autofocus" not in client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)


def test_the_timeline_shows_the_newest_entry_first_right_after_the_result(coordinator):
    client, _ = coordinator
    lead = _lead()
    for note in ("The first call.", "The second call."):
        client.post(f"/staff/leads/{lead.id}/notes", data={"note-note": note})
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "Newest first." in html
    assert html.index('id="timeline-title"') < html.index("The second call.") < html.index("The first call.")


@pytest.mark.parametrize(
    "path, data",
    [("notes", {"note-note": "Called the patient."}), ("notes", {"note-note": "   "})],
    ids=["done", "refused"],
)
def test_the_way_back_to_the_queue_view_survives_an_action_on_the_lead(coordinator, path, data):
    """The coordinator came from a filtered queue page: after acting on the lead, done or refused,
    "Back to the queue" still goes back to that view, and the next action carries it on again."""
    client, _ = coordinator
    lead = _lead()
    view = "/staff/leads?status=new&after=3.1795937214517094.14"
    client.get(f"/staff/leads/{lead.id}", query_string={"back": view})
    response = client.post(f"/staff/leads/{lead.id}/{path}", query_string={"back": view}, data=data)
    if response.status_code == 302:
        response = client.get(response.headers["Location"])
    html = response.get_data(as_text=True)
    back = re.search(r'<a href="([^"]*)">Back to the queue</a>', html)
    assert back and back.group(1).replace("&amp;", "&") == view
    actions = re.findall(rf'<form method="post" action="(/staff/leads/{lead.id}/[^"]*)"', html)
    carried = {parse_qs(urlsplit(a.replace("&amp;", "&")).query).get("back", [""])[0] for a in actions}
    assert len(actions) >= 4 and carried == {view}


def test_the_way_back_to_the_queue_view_goes_along_to_a_duplicate_and_back(coordinator):
    """From a filtered queue view to a duplicate, then to the request it duplicates and back to
    the duplicate: "Back to the queue" on each still returns to that view."""
    client, _ = coordinator
    earlier = _lead()
    later = _lead(status="duplicate", duplicate_of=earlier)
    view = "/staff/leads?status=duplicate&country=NO"
    for here, there in ((later, earlier), (earlier, later)):
        html = client.get(f"/staff/leads/{here.id}", query_string={"back": view}).get_data(as_text=True)
        link = re.search(rf'<a href="(/staff/leads/{there.id}[^"]*)">{there.reference}</a>', html)
        assert link and parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query)["back"] == [view]


def test_every_field_on_the_lead_page_has_a_label_of_its_own(coordinator):
    """Two boxes both called "Note (optional)" read alike in a screen reader's list of fields and
    in the error summary."""
    client, _ = coordinator
    lead = _lead(status="new")  # the page with the most forms: status, duplicate, spam, note...
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    labels = re.findall(r"<label for=\"[^\"]+\">([^<]+)</label>", html)
    assert len(labels) >= 6 and len(set(labels)) == len(labels), labels


def test_an_empty_note_is_refused_with_a_message(coordinator):
    client, _ = coordinator
    lead = _lead()
    response = client.post(f"/staff/leads/{lead.id}/notes", data={"note-note": "   "})
    assert response.status_code == 400
    assert "Write the note before saving it" in response.get_data(as_text=True)
    assert _events(lead, "note") == []


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("notes", {"note-note": "Called\x00 the patient"}),
        ("status", {"status-status": "contacted", "status-current_status": "routed", "status-note": "a\x00"}),
        ("duplicate", {"duplicate-original_reference": "Q-\x00", "duplicate-note": "same\x00 phone"}),
        ("spam", {"spam-note": "Casino\x00"}),
        ("reroute", {"reroute-reason": "Aarhus\x00 declined"}),
    ],
)
def test_a_control_character_in_a_note_is_refused_and_nothing_changes(coordinator, path, data):
    client, _ = coordinator
    lead = _lead(status="routed")
    response = client.post(f"/staff/leads/{lead.id}/{path}", data=data)
    assert response.status_code == 400  # PostgreSQL refuses NUL: never sent to it
    assert "Remove the invisible control characters" in response.get_data(as_text=True)
    db.session.refresh(lead)
    assert lead.status == "routed" and _events(lead) == []


def test_a_note_keeps_its_line_breaks_and_tabs(coordinator):
    client, _ = coordinator
    lead = _lead()
    client.post(f"/staff/leads/{lead.id}/notes", data={"note-note": "Called twice:\r\n\tno answer"})
    [event] = _events(lead, "note")
    assert event.note == "Called twice:\r\n\tno answer"


def test_a_legal_status_change_goes_through_the_workflow_and_into_the_timeline(coordinator):
    client, user = coordinator
    lead = _lead(status="routed")
    response = client.post(
        f"/staff/leads/{lead.id}/status",
        data={
            "status-status": "contacted",
            "status-current_status": "routed",
            "status-note": "Clinic called",
        },
    )
    assert response.status_code == 302
    db.session.refresh(lead)
    assert lead.status == "contacted"
    [event] = _events(lead, "status_changed")
    assert (event.from_status, event.to_status, event.actor_user_id) == ("routed", "contacted", user.id)
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Status changed to Contacted." in html
    assert "Routed → Contacted" in html


def test_a_status_change_takes_a_note_as_long_as_its_field_allows(coordinator):
    """The form allows 2,000 characters, and the note is also the lead's status reason: a column of
    500 refused it on PostgreSQL with an error page (SQLite does not enforce the length)."""
    client, _ = coordinator
    lead = _lead(status="routed")
    note = ("Spoke with the clinic. " * 86).strip()  # 1,977 characters
    response = client.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": "closed_lost", "status-current_status": "routed", "status-note": note},
    )
    assert response.status_code == 302
    db.session.refresh(lead)
    assert (lead.status, lead.status_reason) == ("closed_lost", note)


def test_an_illegal_status_change_is_refused_with_a_clear_message(coordinator):
    client, _ = coordinator
    lead = _lead(status="new")
    response = client.post(
        f"/staff/leads/{lead.id}/status", data={"status-status": "booked", "status-current_status": "new"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    # The statuses as the pages name them, in the reader's words.
    assert "A lead cannot go from &#39;New&#39; to &#39;Booked&#39;" in html
    assert "Allowed next statuses: Closed lost, Duplicate, Needs review, Routed, Spam" in html
    db.session.refresh(lead)
    assert lead.status == "new" and _events(lead) == []


@pytest.mark.parametrize("current", ["new", "needs_review", "unroutable"])
def test_routed_is_never_set_by_hand_it_follows_from_routing(coordinator, current):
    """Set by hand, a new lead's routing task would skip it, and a lead awaiting review would reach
    clinics without the approval; the list does not offer it and the form refuses it."""
    client, _ = coordinator
    lead = _lead(status=current)
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    select = html[html.index('id="status-status"') :]
    assert 'value="routed"' not in select[: select.index("</select>")]
    response = client.post(
        f"/staff/leads/{lead.id}/status", data={"status-status": "routed", "status-current_status": current}
    )
    assert response.status_code == 409
    assert "A lead becomes routed when clinics are asked" in response.get_data(as_text=True)
    db.session.refresh(lead)
    assert lead.status == current and _events(lead) == []


def test_a_status_change_from_a_stale_page_is_refused(coordinator):
    client, _ = coordinator
    lead = _lead(status="contacted")  # someone moved it on since the page was opened at "routed"
    response = client.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": "closed_lost", "status-current_status": "routed"},
    )
    assert response.status_code == 409
    assert "changed to &#39;Contacted&#39; while you were looking" in response.get_data(as_text=True)
    db.session.refresh(lead)
    assert lead.status == "contacted"


def test_after_a_stale_refusal_the_page_shows_the_status_now_and_the_choice_then_goes_through(coordinator):
    client, _ = coordinator
    lead = _lead(status="contacted")
    refused = client.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": "closed_lost", "status-current_status": "routed"},
    ).get_data(as_text=True)
    shown = refused[refused.index('id="status-current_status"') :]
    assert shown[: shown.index(">")].endswith('value="contacted"')
    again = client.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": "closed_lost", "status-current_status": "contacted"},
    )
    assert again.status_code == 302
    db.session.refresh(lead)
    assert lead.status == "closed_lost"


def test_an_unknown_status_is_refused(coordinator):
    client, _ = coordinator
    lead = _lead()
    response = client.post(f"/staff/leads/{lead.id}/status", data={"status-status": "teleported"})
    assert response.status_code == 400
    assert "Choose a status from the list" in response.get_data(as_text=True)


def _assign(client, lead: Lead, assignee, shown) -> object:
    """Post the lead page's assignment form: `shown` is who the page showed holding the lead."""
    return client.post(
        f"/staff/leads/{lead.id}/assign",
        data={
            "assign-assignee": assignee.id if assignee else "",
            "assign-shown_assignee": shown.id if shown else "nobody",
        },
    )


def test_a_coordinator_assigns_the_lead_to_a_colleague_then_to_themselves(coordinator):
    client, user = coordinator
    colleague = make_staff(email="colleague@example.dk")
    lead = _lead()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert html.count('name="assign-shown_assignee" type="hidden" value="nobody"') == 2  # both forms
    assert _assign(client, lead, colleague, shown=None).status_code == 302
    db.session.refresh(lead)
    assert lead.assigned_to_id == colleague.id
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert f'name="assign-shown_assignee" type="hidden" value="{colleague.id}"' in html
    _assign(client, lead, user, shown=colleague)
    db.session.refresh(lead)
    assert lead.assigned_to_id == user.id
    _assign(client, lead, None, shown=user)
    db.session.refresh(lead)
    assert lead.assigned_to_id is None
    notes = [e.note for e in _events(lead, "assigned")]
    assert notes == ["Assigned to colleague@example.dk", f"Assigned to {user.email}", "Unassigned"]


def test_of_two_coordinators_taking_one_lead_the_later_is_told_who_has_it_and_nothing_changes(coordinator):
    client, me = coordinator
    quicker = make_staff(email="quicker@example.dk")
    lead = _lead(assigned_to_id=quicker.id)  # took it while my page still showed nobody

    response = _assign(client, lead, me, shown=None)

    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "The lead is now assigned to quicker@example.dk" in html and "nothing was changed" in html
    db.session.refresh(lead)
    assert lead.assigned_to_id == quicker.id and _events(lead, "assigned") == []
    # The page shown with the refusal holds what it shows now: taking the lead over is a choice.
    assert f'name="assign-shown_assignee" type="hidden" value="{quicker.id}"' in html
    assert _assign(client, lead, me, shown=quicker).status_code == 302
    db.session.refresh(lead)
    assert lead.assigned_to_id == me.id


@pytest.mark.pg_only  # SQLite runs one writer at a time
@pytest.mark.commits
def test_two_coordinators_taking_one_lead_at_once_one_has_it_and_the_other_is_told(app, taxonomy):
    lead = _lead()
    takers = [make_staff().id, make_staff().id]

    def take_it():
        me = takers.pop()
        try:
            lead_actions.assign_coordinator(lead.id, me, me, shown_assignee_id=None)
        except lead_actions.ActionError as exc:
            db.session.rollback()
            return str(exc)
        time.sleep(0.5)  # the other request runs meanwhile
        db.session.commit()
        return "assigned"

    outcomes = at_once(app, take_it)
    [refusal] = [outcome for outcome in outcomes if outcome != "assigned"]
    db.session.refresh(lead)
    assert lead.assigned_to is not None
    assert refusal.startswith(f"The lead is now assigned to {lead.assigned_to.email}")
    assert len(_events(lead, "assigned")) == 1


def test_assigning_from_a_page_that_showed_a_holder_since_unassigned_is_refused(coordinator):
    client, me = coordinator
    colleague = make_staff(email="colleague@example.dk")
    lead = _lead()  # my page showed the colleague; they have unassigned it since
    response = _assign(client, lead, me, shown=colleague)
    assert response.status_code == 409
    assert "The lead was unassigned while you were looking at it" in response.get_data(as_text=True)
    db.session.refresh(lead)
    assert lead.assigned_to_id is None


@pytest.mark.parametrize("shown", [None, "", "x1", "²"])
def test_an_assignment_without_what_the_page_showed_is_refused_as_out_of_date(coordinator, shown):
    client, me = coordinator
    lead = _lead()
    data = {"assign-assignee": me.id} | ({} if shown is None else {"assign-shown_assignee": shown})
    response = client.post(f"/staff/leads/{lead.id}/assign", data=data)
    assert response.status_code == 400
    assert "The page is out of date" in response.get_data(as_text=True)
    db.session.refresh(lead)
    assert lead.assigned_to_id is None


def test_a_deactivated_colleague_cannot_be_given_a_lead(coordinator):
    client, _ = coordinator
    gone = make_staff(email="gone@example.dk", active=False)
    lead = _lead()
    response = _assign(client, lead, gone, shown=None)
    assert response.status_code == 400
    assert "Choose a coordinator from the list" in response.get_data(as_text=True)
    db.session.refresh(lead)
    assert lead.assigned_to_id is None


def test_marking_a_duplicate_links_both_ways(coordinator):
    client, _ = coordinator
    earlier = _lead(created_at=ago(days=3), full_name="First request")
    later = _lead(created_at=ago(hours=1))
    response = client.post(
        f"/staff/leads/{later.id}/duplicate",
        data={"duplicate-original_reference": earlier.reference.lower(), "duplicate-note": "same phone"},
    )
    assert response.status_code == 302
    db.session.refresh(later)
    assert (later.status, later.duplicate_of_id) == ("duplicate", earlier.id)
    assert _events(later)[-1].note == f"Duplicate of {earlier.reference}: same phone"
    later_html = client.get(f"/staff/leads/{later.id}").get_data(as_text=True)
    assert f'href="/staff/leads/{earlier.id}">{earlier.reference}</a>' in later_html
    earlier_html = client.get(f"/staff/leads/{earlier.id}").get_data(as_text=True)
    assert f'href="/staff/leads/{later.id}">{later.reference}</a>' in earlier_html


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("unknown", "No request has the reference"),
        ("itself", "cannot be a duplicate of itself"),
        ("newer", "arrived after this request"),
    ],
)
def test_a_wrong_duplicate_reference_is_refused_with_a_reason(coordinator, which, message):
    client, _ = coordinator
    lead = _lead(created_at=ago(days=2))
    newer = _lead(created_at=ago(hours=1))
    reference = {"unknown": "Q-ZZZZZZ", "itself": lead.reference, "newer": newer.reference}[which]
    response = client.post(
        f"/staff/leads/{lead.id}/duplicate", data={"duplicate-original_reference": reference}
    )
    assert response.status_code == 409
    assert message in response.get_data(as_text=True)
    db.session.refresh(lead)
    assert lead.status == "new" and lead.duplicate_of_id is None


def test_marking_spam_records_why(coordinator):
    client, user = coordinator
    lead = _lead()
    client.post(f"/staff/leads/{lead.id}/spam", data={"spam-note": "Casino links"})
    db.session.refresh(lead)
    assert lead.status == "spam"
    [event] = _events(lead)
    assert (event.to_status, event.note, event.actor_user_id) == ("spam", "Casino links", user.id)


def test_a_failed_email_shows_its_error_and_can_be_sent_again_once(coordinator):
    client, user = coordinator
    lead = _lead(status="routed")
    failed = EmailMessageFactory(
        lead_id=lead.id, status="failed", attempts=1, last_error="550 5.1.1 No such user"
    )
    sent = EmailMessageFactory(lead_id=lead.id, status="sent", attempts=1)
    db.session.commit()
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "550 5.1.1 No such user" in html
    assert f"/emails/{failed.id}/resend" in html and f"/emails/{sent.id}/resend" not in html

    response = client.post(f"/staff/leads/{lead.id}/emails/{failed.id}/resend")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/leads/{lead.id}")
    copy = db.session.scalar(sa.select(EmailMessage).filter_by(idempotency_key=f"resend:{failed.id}:1"))
    assert copy.status == "queued" and copy.to_address == failed.to_address
    assert copy.body_text == failed.body_text and copy.message_id != failed.message_id
    outbox = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.task_name.in_([SEND_EMAILS, SEND_PROVIDER_EMAILS]))
    ).all()
    assert [m.payload for m in outbox] == [{"email_ids": [copy.id]}]
    assert _events(lead, "email_resent")[0].actor_user_id == user.id
    db.session.refresh(failed)
    assert failed.status == "failed"  # the history keeps the server's answer

    again = client.post(f"/staff/leads/{lead.id}/emails/{failed.id}/resend")
    assert again.status_code == 409
    assert "already been sent again" in again.get_data(as_text=True)
    assert client.post(f"/staff/leads/{lead.id}/emails/{sent.id}/resend").status_code == 409
    assert count_rows(EmailMessage) == 3


def test_an_email_whose_words_were_removed_is_not_sent_again_empty(coordinator):
    client, _ = coordinator
    lead = _lead(status="routed")
    cleared = EmailMessageFactory(  # as erasure and retention leave a failed email
        lead_id=lead.id, status="failed", subject="", body_text="", body_html="", to_address=""
    )
    db.session.commit()
    response = client.post(f"/staff/leads/{lead.id}/emails/{cleared.id}/resend")
    assert response.status_code == 409
    assert "words have been removed" in response.get_data(as_text=True)
    assert count_rows(EmailMessage) == 1


def test_an_email_of_another_lead_cannot_be_resent_from_this_page(coordinator):
    client, _ = coordinator
    lead, other = _lead(), _lead()
    failed = EmailMessageFactory(lead_id=other.id, status="failed")
    db.session.commit()
    response = client.post(f"/staff/leads/{lead.id}/emails/{failed.id}/resend")
    assert response.status_code == 409
    assert "does not belong to this request" in response.get_data(as_text=True)


def test_the_status_list_offers_only_the_allowed_moves_and_preselects_none(coordinator):
    client, _ = coordinator
    lead = _lead(status="booked")
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    select = html[html.index('id="status-status"') :]
    select = select[: select.index("</select>")]
    assert '<option selected value="">Choose a new status</option>' in select
    assert 'value="closed_lost"' in select and 'value="withdrawn"' in select
    assert 'value="routed"' not in select and 'value="new"' not in select
    response = client.post(
        f"/staff/leads/{lead.id}/status", data={"status-status": "", "status-current_status": "booked"}
    )
    assert response.status_code == 400 and "Choose a status from the list" in response.get_data(as_text=True)


def test_a_withdrawn_lead_says_its_status_is_final(coordinator):
    client, _ = coordinator
    lead = _lead(status="withdrawn")
    html = client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert "its status cannot change" in html and 'id="status-status"' not in html

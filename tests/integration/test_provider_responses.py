"""A provider answers through the signed link in their email: no account, one click, and nothing
leaks through a bad link."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from leads.directory.service import pause_provider
from leads.extensions import db
from leads.messaging import tokens
from leads.messaging.email import render_pending
from leads.models import Assignment, EmailMessage, Lead, LeadEvent, Provider
from leads.routing import candidates, responses
from leads.routing.service import route_lead
from leads.timeutil import utcnow
from tests.factories import LeadFactory
from tests.helpers import load_demo_providers_reading_english, lock_order, sqlite_statements, statements
from tests.quote_support import a_clinic_left_for

# A provider's answer locks its assignment row (FOR UPDATE on PostgreSQL).
pytestmark = pytest.mark.pg

PATIENT_NAME = "Freja Ørsted"


@pytest.fixture
def routed(app, taxonomy):
    """A lead routed by the real routing service to the demo providers who offer its treatment."""
    load_demo_providers_reading_english()
    lead = LeadFactory(full_name=PATIENT_NAME, details="C6 incomplete since 2023")
    db.session.commit()
    assert route_lead(lead.id) == "routed"
    assignments = db.session.scalars(
        sa.select(Assignment).filter_by(lead_id=lead.id).order_by(Assignment.rank)
    ).all()
    assert len(assignments) >= 2
    return lead, assignments


def _link(assignment):
    return f"/p/{tokens.make_assignment_token(assignment.id)}"


def _events(lead, kind):
    return db.session.scalars(sa.select(LeadEvent).filter_by(lead_id=lead.id, kind=kind)).all()


def _emails(template):
    return db.session.scalars(sa.select(EmailMessage).filter_by(template=template)).all()


def test_opening_the_link_shows_the_full_request_and_marks_it_viewed_once(client, routed):
    lead, (first, *_) = routed
    page = client.get(_link(first))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    for shared in (PATIENT_NAME, lead.email, lead.phone, "C6 incomplete since 2023", lead.reference):
        assert shared in body
    assert page.headers["Cache-Control"] == "no-store"
    client.get(_link(first))
    db.session.refresh(first)
    assert first.status == "viewed" and first.viewed_at is not None
    assert len(_events(lead, "provider_viewed")) == 1


def test_the_clinic_reads_the_phone_number_in_groups_left_to_right_and_dials_it_as_stored(client, routed):
    """Grouped for reading (+49 30 1234567), kept left to right on an Arabic page, where its groups
    would otherwise read in reverse order; the link dials E.164."""
    lead, (first, *_) = routed
    lead.phone = "+49301234567"
    first.provider.notification_language = "ar"
    db.session.commit()
    body = client.get(_link(first)).get_data(as_text=True)
    assert 'dir="ltr" href="tel:+49301234567">+49 30 1234567</a>' in body


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Purpose", "prefetch"),
        ("Sec-Purpose", "prefetch"),
        ("Sec-Purpose", "prefetch;prerender"),
        ("X-Purpose", "preview"),
        ("X-Moz", "prefetch"),
    ],
)
def test_a_mail_clients_prefetch_or_preview_shows_the_page_without_marking_it_viewed(
    client, routed, header, value
):
    lead, (first, *_) = routed
    page = client.get(_link(first), headers={header: value})
    assert page.status_code == 200 and PATIENT_NAME in page.get_data(as_text=True)
    db.session.expire_all()
    unopened = db.session.get(Assignment, first.id)
    assert (unopened.status, unopened.viewed_at) == ("notified", None)
    assert _events(lead, "provider_viewed") == []
    # The clinic's own opening afterwards is the one that counts, once.
    client.get(_link(first))
    client.get(_link(first))
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).status == "viewed"
    assert len(_events(lead, "provider_viewed")) == 1


def test_a_head_request_answers_with_the_pages_headers_and_marks_nothing(client, routed):
    lead, (first, *_) = routed
    head = client.head(_link(first))
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Cache-Control"] == "no-store"
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).viewed_at is None
    assert _events(lead, "provider_viewed") == []


def _transactions(seen: list[str]) -> list[list[str]]:
    """The statements SQLite ran, one list per transaction, each starting with its BEGIN."""
    transactions = []
    for statement in seen:
        if statement.startswith("BEGIN"):
            transactions.append([])
        if transactions:
            transactions[-1].append(statement)
    return transactions


@pytest.mark.sqlite_only
@pytest.mark.commits
@pytest.mark.parametrize("fetch", ["head", "prefetch", "opened again"])
def test_a_fetch_that_marks_nothing_never_takes_the_write_lock(client, routed, fetch):
    """A link checker's HEAD, a mail client's prefetch, the clinic opening its page again: nothing
    to write, so SQLite's write lock, which every other writer would wait for, is never taken."""
    lead, (first, *_) = routed
    link = _link(first)
    if fetch == "opened again":
        client.get(link)
    with sqlite_statements() as seen:
        if fetch == "head":
            response = client.head(link)
        else:
            headers = {"Sec-Purpose": "prefetch"} if fetch == "prefetch" else {}
            response = client.get(link, headers=headers)
    assert response.status_code == 200
    assert "BEGIN IMMEDIATE" not in seen and "BEGIN" in seen, seen
    assert len(_events(lead, "provider_viewed")) == (1 if fetch == "opened again" else 0)


@pytest.mark.sqlite_only
@pytest.mark.commits
def test_the_first_opening_holds_the_write_lock_only_for_marking_it_viewed(client, routed):
    """The page is read and made without the lock; the mark and its history entry are one
    transaction of their own, conditional on nobody having marked it first."""
    lead, (first, *_) = routed
    link = _link(first)
    with sqlite_statements() as seen:
        assert client.get(link).status_code == 200
    [written] = [t for t in _transactions(seen) if t[0] == "BEGIN IMMEDIATE"]
    assert [s.split()[0] for s in written if s.split()[0] in ("UPDATE", "INSERT", "COMMIT")] == [
        "UPDATE",
        "INSERT",
        "COMMIT",
    ], written
    assert "viewed_at IS NULL" in next(s for s in written if s.startswith("UPDATE")), written
    assert written[-1] == "COMMIT"
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).status == "viewed"
    assert len(_events(lead, "provider_viewed")) == 1


def test_a_clinic_deactivated_between_the_check_and_the_mark_gets_no_view_recorded(routed, monkeypatch):
    """The mark is guarded by the clinic's own rule (`Provider.links_open`), not only by the
    check that ran before it in another transaction."""
    lead, (first, *_) = routed
    mark_viewed = responses._mark_viewed

    def deactivated_in_between(assignment_id):
        pause_provider(db.session.get(Provider, first.provider_id), None)  # until reactivated
        db.session.commit()
        return mark_viewed(assignment_id)

    monkeypatch.setattr(responses, "_mark_viewed", deactivated_in_between)
    assert responses.open_request(tokens.make_assignment_token(first.id)) is False
    db.session.expire_all()
    unviewed = db.session.get(Assignment, first.id)
    assert (unviewed.status, unviewed.viewed_at) == ("notified", None)
    assert _events(lead, "provider_viewed") == []


def test_accepting_moves_the_lead_on_and_tells_coordinators_and_patient(client, routed):
    lead, (first, *_) = routed
    response = client.post(_link(first) + "/accept", data={"note": "Call Tuesday"})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "contacted"
    accepted = db.session.get(Assignment, first.id)
    assert (accepted.status, accepted.response_note) == ("accepted", "Call Tuesday")
    assert len(_events(lead, "provider_accepted")) == 1
    [to_coordinators] = _emails("coordinator_provider_response")
    assert "accepted" in to_coordinators.body_text
    [to_patient] = _emails("patient_provider_accepted")
    assert to_patient.to_address == lead.email and first.provider.name in to_patient.body_text
    # Nothing about their health: the address was never verified, as for the confirmation.
    render_pending(to_patient)
    for health in (lead.treatment.name, lead.condition.name, "C6 incomplete since 2023"):
        assert health not in to_patient.body_text and health not in to_patient.body_html
    provider = db.session.get(Provider, first.provider_id)
    assert (provider.response_count, provider.accepted_count) == (1, 1)
    assert provider.median_response_seconds is not None


def test_answering_twice_shows_the_answer_already_given_and_changes_nothing(client, routed):
    lead, (first, *_) = routed
    client.post(_link(first) + "/accept", data={})
    client.get(_link(first))  # the first answer's page, with its result
    again = client.post(_link(first) + "/decline", data={"reason": "no_capacity"})
    assert again.status_code == 303
    page = client.get(_link(first)).get_data(as_text=True)
    assert "You accepted this request" in page
    # Not told that the Decline was saved: the first answer stands, and the page says so.
    assert "Your answer is saved." not in page
    assert "already been answered the other way" in page and 'class="flashes flashes-error"' in page
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).status == "accepted"
    assert len(_events(lead, "provider_declined")) == 0


@pytest.mark.parametrize(("first_answer", "second_answer"), [("decline", "accept"), ("accept", "accept")])
def test_a_second_tabs_answer_is_called_saved_only_when_it_is_the_answer_that_stands(
    client, routed, first_answer, second_answer
):
    lead, (first, *_) = routed
    data = {"accept": {}, "decline": {"reason": "no_capacity"}}
    client.post(_link(first) + f"/{first_answer}", data=data[first_answer])
    client.get(_link(first))  # the first answer's page, with its result
    client.post(_link(first) + f"/{second_answer}", data=data[second_answer])
    page = client.get(_link(first)).get_data(as_text=True)
    if first_answer == second_answer:  # a double click: the answer given is the one saved
        assert "Your answer is saved." in page and "answered the other way" not in page
    else:
        assert "You declined this request" in page and "Your answer is saved." not in page
        assert "already been answered the other way" in page
    db.session.expire_all()
    stands = {"accept": "accepted", "decline": "declined"}[first_answer]
    assert db.session.get(Assignment, first.id).status == stands


def test_declining_needs_a_reason_and_then_asks_the_next_provider(client, routed, app):
    lead, assignments = routed
    first = assignments[0]
    missing = client.post(_link(first) + "/decline", data={})
    assert missing.status_code == 400
    assert "Choose a reason for declining" in missing.get_data(as_text=True)
    # Each reason is marked invalid (a fieldset cannot carry the attribute), and none of the Accept form.
    radios = re.findall(r'<input[^>]* id="reason-\d"[^>]*>', missing.get_data(as_text=True))
    assert len(radios) == 4 and all('aria-invalid="true"' in radio for radio in radios)
    assert missing.get_data(as_text=True).count('aria-invalid="true"') == 4
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).status in ("notified", "viewed")

    assert (
        client.post(
            _link(first) + "/decline", data={"reason": "not_suitable", "decline_note": "x"}
        ).status_code
        == 303
    )
    db.session.expire_all()
    declined = db.session.get(Assignment, first.id)
    assert (declined.status, declined.decline_reason) == ("declined", "not_suitable")
    assert len(_events(lead, "provider_declined")) == 1
    assert len(_events(lead, "rerouted")) == 1
    # The others are still considering it, so the lead stays routed even if nobody new was found.
    assert db.session.get(Lead, lead.id).status == "routed"


OFFERED = "Your answer is saved. We have offered the request to another clinic."
NOT_OFFERED = "Your answer is saved. The request was not offered to another clinic."


def _assignment_count(lead) -> int:
    return len(db.session.scalars(sa.select(Assignment).filter_by(lead_id=lead.id)).all())


def test_a_clinic_that_declines_is_told_another_clinic_was_asked_when_one_was(client, routed):
    lead, (first, *_) = routed
    a_clinic_left_for(lead)
    before = _assignment_count(lead)
    client.post(_link(first) + "/decline", data={"reason": "no_capacity"})
    page = client.get(_link(first)).get_data(as_text=True)
    assert OFFERED in page and "not offered" not in page
    assert "Reason: no capacity at the moment.</p>" in page  # what stays: no promise about later
    assert _assignment_count(lead) == before + 1


@pytest.mark.parametrize("why", ["another clinic accepted", "no clinic left"])
def test_a_clinic_that_declines_is_not_told_another_clinic_was_asked_when_none_was(client, routed, why):
    lead, (first, second, *_) = routed
    if why == "another clinic accepted":
        a_clinic_left_for(lead)  # there is one, but the request already has a taker
        client.post(_link(second) + "/accept", data={})
    before = _assignment_count(lead)
    client.post(_link(first) + "/decline", data={"reason": "not_suitable"})
    page = client.get(_link(first)).get_data(as_text=True)
    assert NOT_OFFERED in page and "We have offered" not in page and "We will offer" not in page
    assert _assignment_count(lead) == before
    # Sent again (a double click), it says only that the answer stands.
    client.post(_link(first) + "/decline", data={"reason": "not_suitable"})
    again = client.get(_link(first)).get_data(as_text=True)
    assert "Your answer is saved." in again and NOT_OFFERED not in again


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("accept", {"note": "Call\x00 Tuesday"}, "note"),
        ("accept", {"note": "Call\x1b Tuesday"}, "note"),
        ("decline", {"reason": "no_capacity", "decline_note": "Full\x00 until May"}, "decline_note"),
    ],
)
def test_a_control_character_in_the_note_is_refused_at_its_field_and_nothing_changes(
    client, routed, action, data, field
):
    lead, (first, *_) = routed
    response = client.post(_link(first) + f"/{action}", data=data)
    assert response.status_code == 400  # PostgreSQL refuses NUL in text: it was a 500 there
    body = response.get_data(as_text=True)
    assert f'id="{field}-error"><span class="visually-hidden">Error:</span> ' in body
    assert "Remove the invisible control characters" in body and f'<a href="#{field}">' in body
    # Marked invalid and described by its message, as the quote form's fields are.
    assert re.search(
        rf'<textarea aria-describedby="{field}-error" aria-invalid="true"[^>]* id="{field}"', body
    )
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).status == "notified"
    answered = {"accept": "provider_accepted", "decline": "provider_declined"}[action]
    assert _events(lead, answered) == [] and _emails("coordinator_provider_response") == []


def test_a_note_keeps_its_line_breaks_and_tabs(client, routed):
    lead, (first, *_) = routed
    note = "Call Tuesday,\r\n\tor Wednesday"
    assert client.post(_link(first) + "/accept", data={"note": note}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).response_note == note


def test_an_expired_link_shows_a_clear_page_without_data(client, routed):
    lead, (first, *_) = routed
    link = _link(first)
    with time_machine.travel(utcnow().timestamp() + 15 * 86400, tick=False):
        page = client.get(link)
    assert page.status_code == 410
    body = page.get_data(as_text=True)
    assert "expired" in body and "coordinators@" in body
    assert PATIENT_NAME not in body and lead.reference not in body


@pytest.mark.parametrize("kind", ["tampered", "truncated", "patient-token", "unknown-assignment"])
def test_a_bad_link_shows_a_clear_page_and_leaks_nothing(client, routed, kind):
    lead, (first, *_) = routed
    good = tokens.make_assignment_token(first.id)
    token = {
        # Inside the signature: its last character may carry only padding bits.
        "tampered": good[:-10] + ("A" if good[-10] != "A" else "B") + good[-9:],
        "truncated": good[: len(good) // 2],
        "patient-token": tokens.make_patient_token(first.id),
        "unknown-assignment": tokens.make_assignment_token(987_654),
    }[kind]
    page = client.get(f"/p/{token}")
    assert page.status_code == 404
    body = page.get_data(as_text=True)
    assert "not valid" in body
    assert PATIENT_NAME not in body and lead.email not in body
    assert client.post(f"/p/{token}/accept", data={}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Assignment, first.id).status == "notified"


def test_a_link_to_a_withdrawn_request_shows_no_data(client, routed):
    from leads.patients.self_service import withdraw_consent

    lead, (first, *_) = routed
    withdraw_consent(lead.id)
    page = client.get(_link(first))
    assert page.status_code == 410
    body = page.get_data(as_text=True)
    assert "withdrawn" in body and PATIENT_NAME not in body


def test_the_provider_email_link_opens_the_request(client, routed):
    lead, (first, *_) = routed
    email = db.session.scalar(
        sa.select(EmailMessage).where(
            EmailMessage.template.like("provider_notification%"),
            EmailMessage.to_address == first.provider.notification_emails[0],
        )
    )
    render_pending(email)  # as the worker that sends it does
    db.session.commit()  # the worker's own transaction: a request starts with nothing pending
    link = re.search(r"https?://\S+/p/(\S+)", email.body_text).group(0)
    path = "/p/" + link.rsplit("/p/", 1)[1]
    assert client.get(path).status_code == 200


def _settled(provider, status, *, days_ago, answered=True):
    """An assignment of `provider` to a lead of its own, answered or expired `days_ago` days ago."""
    when = utcnow() - timedelta(days=days_ago)
    assignment = Assignment(
        lead=LeadFactory(),
        provider=provider,
        rank=1,
        score=50.0,
        status=status,
        created_at=when - timedelta(hours=5),
    )
    if answered:
        assignment.responded_at = when
    else:
        assignment.expired_at = when
    db.session.add(assignment)
    db.session.flush()


def test_the_response_rate_weighs_the_last_answered_or_expired_assignments_only(routed, monkeypatch):
    _, [first, *_] = routed
    provider = first.provider
    monkeypatch.setattr(responses, "STATS_WINDOW", 4)
    for days_ago in (400, 390, 380):  # silent long ago
        _settled(provider, "expired", days_ago=days_ago, answered=False)
    for days_ago, status in ((30, "accepted"), (20, "declined"), (10, "accepted"), (5, "not_chosen")):
        _settled(provider, status, days_ago=days_ago)

    responses.refresh_provider_stats(provider.id)
    assert (provider.response_count, provider.accepted_count, provider.unanswered_count) == (4, 3, 0)
    assert provider.median_response_seconds == 5 * 3600

    _settled(provider, "expired", days_ago=1, answered=False)  # silent again, lately
    responses.refresh_provider_stats(provider.id)
    assert (provider.response_count, provider.accepted_count, provider.unanswered_count) == (3, 2, 1)
    # Routing reads what is stored, not the history: 3 answered of 4.
    [profile] = candidates.provider_profiles([provider], utcnow())
    assert (profile.response_count, profile.unanswered_count) == (3, 1)
    db.session.rollback()


@pytest.mark.pg_only  # SQLite has one writer at a time: no row locks to order
def test_answers_and_expiries_lock_the_lead_before_its_assignment(routed):
    """As choosing, withdrawing and closing do: a clinic's Accept at the moment the patient
    chooses another clinic's quote (or withdraws) must not deadlock with it."""
    from leads.routing import escalation

    lead, (first, second, *_) = routed
    assert lock_order(lambda: escalation._expire(second.id, utcnow()))[:2] == ["lead", "assignment"]
    assert lock_order(lambda: responses.decline(first.id, reason="no_capacity", note=None))[:2] == [
        "lead",
        "assignment",
    ]
    other = LeadFactory()
    db.session.commit()
    assert route_lead(other.id) == "routed"
    waiting = db.session.scalars(sa.select(Assignment).filter_by(lead_id=other.id)).first()
    assert lock_order(lambda: responses.accept(waiting.id, note=None))[:2] == ["lead", "assignment"]


@pytest.mark.pg_only  # SQLite has one writer at a time: no row locks to order
def test_a_provider_that_no_longer_offers_the_treatment_is_locked_in_the_candidates_id_order(routed):
    """An expiry or decline locks the providers as a routing does, in one id order: a provider
    locked after the others, out of that order, could deadlock with a routing of another lead."""
    from leads.routing.service import lock_as_routing

    lead, (first, *_) = routed
    elsewhere = Provider(name="Elsewhere Clinic", city="Vejle", region="Syddanmark", notification_emails=[])
    db.session.add(elsewhere)
    db.session.flush()
    with statements() as seen:
        lock_as_routing(lead, elsewhere.id)
    locks = [s for s in seen if "FROM provider" in s and "FOR NO KEY UPDATE" in s]
    assert len(locks) == 1 and "ORDER BY provider.id" in locks[0]

"""After the quotes are sent: expiry and the patient's renewal request, the clinic's and the
patient's one reminder (in the escalation sweep), the patient told of a withdrawal, what a
coordinator's manual move does to quotes, and the quotes in the patient's data export."""

import re
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from babel.dates import format_date
from markupsafe import escape

from leads.extensions import db
from leads.i18n import isolate
from leads.messaging import tokens
from leads.models import Assignment, EmailMessage, Lead, Provider, Quote
from leads.patients.privacy import erase_patient, export_patient
from leads.quotes.follow_up import _silent_acceptances, _undecided_leads
from leads.routing.escalation import escalate_assignments
from leads.routing.responses import refresh_provider_stats
from leads.routing.service import reroute_lead, route_lead
from leads.timeutil import utcnow
from leads.workdays import DANISH_TIME, add_working_days, danish_date
from tests.factories import LeadFactory
from tests.integration.test_quotes import (
    choice,
    emails,
    events,
    patient,
    provider,
    quote_form,
    two_clinics_accept,
)
from tests.quote_support import a_clinic_left_for
from tests.staff_support import signed_in_client

# Guarded updates and the lead lock must hold on PostgreSQL too.
pytestmark = pytest.mark.pg


@pytest.fixture
def accepted(app, client, taxonomy):
    return two_clinics_accept(client)


def _travel(days=0, **delta):
    return time_machine.travel(utcnow() + timedelta(days=days, **delta), tick=False)


def _sweep():
    """One run of the escalation sweep beat fires; the quote follow-up's part of the result."""
    result = escalate_assignments().quotes
    db.session.expire_all()
    return result


def _quote(assignment) -> Quote:
    return db.session.scalar(sa.select(Quote).filter_by(assignment_id=assignment.id))


def _status(lead) -> str:
    return db.session.scalar(sa.select(Lead.status).filter_by(id=lead.id))


def _no_detail(email: EmailMessage, lead, *secrets):
    for secret in ("20,000", "20000", "MRI", lead.details, lead.treatment.name, *secrets):
        assert secret not in email.body_text and secret not in email.body_html, secret


# Expiry ------------------------------------------------------------------------------------


def test_a_quote_past_its_validity_expires_once_in_the_sweep_and_cannot_be_chosen(client, accepted):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form(valid_days="1"))
    client.post(provider(second) + "/quote", data=quote_form())
    assert _sweep().expired == 0
    with _travel(days=3):
        assert _sweep().expired == 1
        assert _sweep().expired == 0
        expired = _quote(first)
        assert (expired.status, _quote(second).status, _status(lead)) == ("expired", "live", "quoted")
        assert len(events(lead, "quote_expired")) == 1
        page = client.post(
            f"{patient(lead)}/quotes/{expired.id}/choose", data=choice(expired), follow_redirects=True
        )
        text = page.get_data(as_text=True)
        assert "This quote expired" in text and "Ask the clinic to renew this quote" in text
    db.session.expire_all()
    assert _quote(first).status == "expired" and _status(lead) == "quoted"
    assert events(lead, "quote_chosen") == []


def test_a_quote_is_valid_until_2359_danish_time_on_its_last_day_and_expires_at_danish_midnight(
    client, accepted
):
    """Not until 00:59 CET (01:59 CEST) the day after, the end of the UTC day, as it read before.
    The clinic's page names the day, as Danish time (test_quote_validity_day)."""
    lead, first, _ = accepted
    first.provider.notification_language = "da"
    db.session.commit()
    client.post(provider(first) + "/quote", data=quote_form(valid_days="1"))
    last_day = danish_date(utcnow()) + timedelta(days=1)
    page = client.get(provider(first)).get_data(as_text=True)
    assert re.search(
        rf"Gyldigt til</dt><dd>{format_date(last_day, 'long', locale='da')} \([^)<]+\)</dd>", page
    )
    midnight = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=DANISH_TIME)
    with time_machine.travel(midnight - timedelta(seconds=1), tick=False):
        assert _sweep().expired == 0
    with time_machine.travel(midnight, tick=False):
        assert _sweep().expired == 1 and _quote(first).status == "expired"


def test_the_renew_button_is_named_by_its_visible_text_then_the_clinic(client, accepted):
    """WCAG 2.5.3: a voice user says what they see, "Ask the clinic to renew this quote"."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form(valid_days="1"))
    with _travel(days=3):
        assert _sweep().expired == 1
        page = client.get(patient(lead)).get_data(as_text=True)
    [button] = re.findall(r"<button[^>]*>Ask the clinic to renew this quote.*?</button>", page, re.S)
    assert "aria-label" not in button
    assert f'<span class="visually-hidden"> ({escape(first.provider.name)})</span></button>' in button


def test_when_the_last_live_quote_expires_the_lead_waits_for_quotes_again(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form(valid_days="2"))
    with _travel(days=4):
        assert _sweep().expired == 1
    assert _status(lead) == "contacted"
    [back] = [e for e in events(lead, "status_changed") if e.note == "No live quote is left."]
    assert (back.from_status, back.to_status, back.actor_type) == ("quoted", "contacted", "system")


# Renewal -----------------------------------------------------------------------------------


def test_the_patient_asks_once_to_renew_and_the_clinics_revision_makes_the_quote_live_again(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form(valid_days="1"))
    quote = _quote(first)
    with _travel(days=3):
        # Before the sweep reached it: the request expires it on the way.
        done = client.post(f"{patient(lead)}/quotes/{quote.id}/renew", follow_redirects=True)
        assert "We have asked the clinic to renew its quote" in done.get_data(as_text=True)
        again = client.post(f"{patient(lead)}/quotes/{quote.id}/renew", follow_redirects=True)
        assert "You have already asked the clinic to renew this quote" in again.get_data(as_text=True)
        db.session.expire_all()
        quote = _quote(first)
        assert quote.status == "expired" and quote.renewal_requested_at is not None
        assert len(events(lead, "quote_renewal_requested")) == 1
        sent = emails("provider_quote_renewal")
        assert {e.to_address for e in sent} == set(first.provider.notification_emails)
        assert len(sent) == len(first.provider.notification_emails)
        assert tokens.make_assignment_token(first.id).split(".")[0] in sent[0].body_text
        _no_detail(sent[0], lead, lead.full_name, lead.email)
        clinic_page = client.get(provider(first)).get_data(as_text=True)
        assert "The patient asked you to renew it" in clinic_page

        client.post(provider(first) + "/quote", data=quote_form(valid_days="30"))
        db.session.expire_all()
        quote = _quote(first)
        assert (quote.status, quote.revision, quote.renewal_requested_at) == ("live", 2, None)
        assert _status(lead) == "quoted"
        assert len(emails("patient_quote")) == 2
        client.post(f"{patient(lead)}/quotes/{quote.id}/choose", data=choice(quote))
    db.session.expire_all()
    assert _quote(first).status == "chosen" and _status(lead) == "chosen"


def test_a_renewal_of_a_live_a_withdrawn_or_another_patients_quote_is_refused_and_changes_nothing(
    client, accepted
):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote/withdraw")
    live, withdrawn = _quote(first), _quote(second)
    other = LeadFactory()
    db.session.commit()
    for path, message in (
        (f"{patient(lead)}/quotes/{live.id}/renew", "This quote has not expired, so it needs no renewal."),
        (f"{patient(lead)}/quotes/{withdrawn.id}/renew", "This quote can no longer be renewed."),
        (f"{patient(other)}/quotes/{live.id}/renew", "This quote is not part of your request."),
        (f"{patient(lead)}/quotes/999999/renew", "This quote is not part of your request."),
    ):
        page = client.post(path, follow_redirects=True)
        assert message in page.get_data(as_text=True), path
    db.session.expire_all()
    assert (_quote(first).status, _quote(second).status) == ("live", "withdrawn")
    assert _quote(first).renewal_requested_at is None and _quote(second).renewal_requested_at is None
    assert events(lead, "quote_renewal_requested") == [] and emails("provider_quote_renewal") == []


# Reminders ---------------------------------------------------------------------------------


def test_a_clinic_that_accepted_without_quoting_gets_one_reminder_after_two_working_days(client, accepted):
    lead, first, second = accepted
    client.post(provider(second) + "/quote", data=quote_form())
    due = add_working_days(db.session.get(Assignment, first.id).responded_at, 2)
    with time_machine.travel(due - timedelta(minutes=5), tick=False):
        assert _sweep().clinics_reminded == 0
    with time_machine.travel(due + timedelta(minutes=5), tick=False):
        assert _sweep().clinics_reminded == 1
        assert _sweep().clinics_reminded == 0
    with _travel(days=20):
        assert _sweep().clinics_reminded == 0
    reminders = emails("provider_quote_reminder")
    assert sorted(e.to_address for e in reminders) == sorted(first.provider.notification_emails)
    _no_detail(reminders[0], lead, lead.full_name, lead.email, lead.phone)
    assert tokens.make_assignment_token(first.id).split(".")[0] in reminders[0].body_text
    assert len(events(lead, "quote_reminder_sent")) == 1


def test_no_quote_reminder_goes_to_a_clinic_once_the_patient_withdrew(client, accepted):
    lead, first, _ = accepted
    client.post(patient(lead) + "/withdraw", data={"confirm_withdraw": "y"})
    with _travel(days=10):
        assert _sweep().clinics_reminded == 0
    assert emails("provider_quote_reminder") == []


def test_a_patient_with_live_quotes_and_no_choice_gets_one_gentle_reminder_after_seven_days(client, accepted):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form(price_from="25000"))
    with _travel(days=6, hours=23):
        assert _sweep().patients_reminded == 0
    with _travel(days=7, hours=1):
        assert _sweep().patients_reminded == 1
        assert _sweep().patients_reminded == 0
    with _travel(days=14):
        assert _sweep().patients_reminded == 0
    [reminder] = emails("patient_quote_reminder")
    assert reminder.to_address == lead.email
    assert tokens.make_patient_token(lead.id).split(".")[0] in reminder.body_text
    _no_detail(reminder, lead, first.provider.name, second.provider.name, "25,000")
    assert len(events(lead, "patient_reminded_of_quotes")) == 1


def test_a_patient_who_chose_or_withdrew_gets_no_reminder(client, accepted, app, taxonomy):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/{_quote(first).id}/choose", data=choice(_quote(first)))
    withdrawn, w_first, _ = two_clinics_accept(client)
    client.post(provider(w_first) + "/quote", data=quote_form())
    client.post(patient(withdrawn) + "/withdraw", data={"confirm_withdraw": "y"})
    with _travel(days=8):
        assert _sweep().patients_reminded == 0
    assert emails("patient_quote_reminder") == []
    assert _quote(w_first).status == "closed"


def test_an_erased_request_is_never_reminded_and_never_picked_again(client, accepted):
    """Its claims stand: rolled back, a few hundred such rows would fill every sweep's batch."""
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())  # the second clinic has not quoted
    erase_patient(lead.reference, user_id=None, door="test")
    with _travel(days=10):
        assert (_sweep().clinics_reminded, _sweep().patients_reminded) == (0, 0)
        assert db.session.scalars(_silent_acceptances(utcnow())).all() == []
        assert db.session.scalars(_undecided_leads(utcnow())).all() == []
    assert emails("provider_quote_reminder") == emails("patient_quote_reminder") == []


def test_the_patients_seven_days_count_from_the_quotes_they_can_choose_from(client, accepted, app):
    """After "none of these suit me" and a re-route, the first round's quotes start no clock."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/none")
    lead = a_clinic_left_for(lead)
    with _travel(days=8):  # re-routed to a clinic that accepts and quotes
        [newcomer] = reroute_lead(lead.id, actor_type="system", reason="none suited", limit=1)
        assert client.post(provider(newcomer) + "/accept", data={}).status_code == 303
        client.post(provider(newcomer) + "/quote", data=quote_form())
        assert _status(lead) == "quoted"
    with _travel(days=9):
        assert _sweep().patients_reminded == 0  # one day after the quote the patient can choose
    with _travel(days=15, hours=1):
        assert _sweep().patients_reminded == 1


def test_a_second_none_of_these_suit_me_after_a_re_route_tells_the_coordinators_again(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/none")
    lead = a_clinic_left_for(lead)
    [newcomer] = reroute_lead(lead.id, actor_type="system", reason="none suited", limit=1)
    assert client.post(provider(newcomer) + "/accept", data={}).status_code == 303
    client.post(provider(newcomer) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/none")
    db.session.expire_all()
    assert len(events(lead, "reroute_requested")) == 2
    assert len(emails("coordinator_patient_request")) == 2


# Withdrawal told, manual moves, export -----------------------------------------------------


def test_the_patient_is_told_briefly_when_a_clinic_withdraws_its_quote(client, accepted):
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(first) + "/quote/withdraw")
    client.post(provider(first) + "/quote/withdraw")
    [told] = emails("patient_quote_withdrawn")
    assert told.to_address == lead.email and first.provider.name in told.body_text
    assert tokens.make_patient_token(lead.id).split(".")[0] in told.body_text
    _no_detail(told, lead)


def test_no_quote_goes_live_on_a_request_a_coordinator_put_on_hold(client, accepted, app):
    """Moved back to unroutable, the patient could not choose it: the clinic is told instead."""
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    coordinator, _ = signed_in_client(app)
    response = coordinator.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": "unroutable", "status-current_status": "quoted", "status-note": "Hold"},
    )
    assert response.status_code == 302
    page = client.post(provider(second) + "/quote", data=quote_form(), follow_redirects=True)
    assert "The coordinators have put this request on hold" in page.get_data(as_text=True)
    db.session.expire_all()
    assert _quote(second) is None and _status(lead) == "unroutable"
    assert "Go ahead with this clinic" not in client.get(patient(lead)).get_data(as_text=True)


def test_a_coordinator_closing_the_lead_closes_its_open_quotes_and_the_clinic_cannot_revise(
    client, accepted, app
):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(second) + "/quote", data=quote_form(valid_days="1"))
    coordinator, _ = signed_in_client(app)
    response = coordinator.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": "contacted", "status-current_status": "quoted", "status-note": "Rethink"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (_quote(first).status, _quote(second).status, _status(lead)) == ("closed", "closed", "contacted")
    [closed] = events(lead, "quotes_closed")
    assert closed.actor_type == "staff" and "2 open quotes closed" in closed.note
    page = client.post(provider(first) + "/quote", data=quote_form(), follow_redirects=True)
    assert "The coordinators closed this request" in page.get_data(as_text=True)
    assert _quote(first).revision == 1
    mine = client.get(patient(lead)).get_data(as_text=True)
    assert "closed before you chose" in mine and "Go ahead with this clinic" not in mine


def _move_by_hand(app, lead, current: str, target: str) -> None:
    coordinator, _ = signed_in_client(app)
    response = coordinator.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": target, "status-current_status": current, "status-note": "The clinic cannot"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert _status(lead) == target


def _answer_figures(provider_id) -> tuple:
    provider = db.session.get(Provider, provider_id)
    return (provider.response_count, provider.accepted_count, provider.unanswered_count)


@pytest.mark.parametrize("booked", [False, True])
def test_closing_a_chosen_request_ends_the_choice_and_the_chosen_clinics_access(
    client, accepted, app, booked
):
    """The quote keeps when the patient chose it and says the choice ended; the clinic's assignment
    closes, an acceptance still (never held against it); its unsent emails are cancelled, and it
    is not emailed, as for any closed request."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/{_quote(first).id}/choose", data=choice(_quote(first)))
    if booked:
        day = (utcnow().date() + timedelta(days=60)).isoformat()
        client.post(provider(first) + "/booked", data={"treatment_date": day})
    chosen_at, figures = _quote(first).decided_at, _answer_figures(first.provider_id)
    before = set(db.session.scalars(sa.select(EmailMessage.id)))

    _move_by_hand(app, lead, "booked" if booked else "chosen", "closed_lost")

    quote = _quote(first)
    assert (quote.status, quote.decided_at) == ("choice_ended", chosen_at)
    assert db.session.get(Assignment, first.id).status == "closed"
    [ended] = events(lead, "choice_ended")
    assert ended.actor_type == "staff" and first.provider.name in ended.note
    assert "a coordinator moved the lead to Closed lost" in ended.note
    assert events(lead, "quotes_closed") == []
    assert {e.status for e in emails("provider_quote_chosen")} == {"cancelled"}
    new = db.session.scalars(sa.select(EmailMessage).where(EmailMessage.id.not_in(before))).all()
    assert not [e for e in new if e.to_address in first.provider.notification_emails]
    refresh_provider_stats(first.provider_id)
    assert _answer_figures(first.provider_id) == figures
    coordinator, _ = signed_in_client(app)
    page = coordinator.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert f"{first.provider.name}: Choice ended" in page and "Chosen by the patient" in page


def test_a_request_reopened_after_a_choice_is_chosen_and_booked_again_and_each_round_is_told(
    client, accepted, app
):
    """Closed and reopened (the only way back from chosen): the earlier choice no longer blocks the
    patient, the clinic chosen then no longer sees the patient, and the coordinators hear of the
    second choice and booking as of the first."""
    lead, first, _ = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(f"{patient(lead)}/quotes/{_quote(first).id}/choose", data=choice(_quote(first)))
    day = (utcnow().date() + timedelta(days=60)).isoformat()
    client.post(provider(first) + "/booked", data={"treatment_date": day})
    _move_by_hand(app, lead, "booked", "closed_lost")
    _move_by_hand(app, lead, "closed_lost", "new")
    assert route_lead(a_clinic_left_for(lead).id) == "routed"
    newcomer = next(a for a in db.session.get(Lead, lead.id).assignments if a.status == "notified")

    earlier = client.get(provider(first))
    assert earlier.status_code == 410
    page = earlier.get_data(as_text=True)
    assert "The coordinators ended the patient&#39;s choice of your clinic" in page
    assert lead.full_name not in page and lead.email not in page and "chose your clinic" not in page

    assert client.post(provider(newcomer) + "/accept", data={}).status_code == 303
    client.post(provider(newcomer) + "/quote", data=quote_form())
    mine = client.get(patient(lead)).get_data(as_text=True)
    assert "that choice has since ended" in mine and f"/quotes/{_quote(newcomer).id}/choose" in mine
    done = client.post(
        f"{patient(lead)}/quotes/{_quote(newcomer).id}/choose",
        data=choice(_quote(newcomer)),
        follow_redirects=True,
    )
    assert f"We have told {isolate(newcomer.provider.name)}" in done.get_data(as_text=True)
    client.post(provider(newcomer) + "/booked", data={"treatment_date": day})

    db.session.expire_all()
    assert _status(lead) == "booked"
    assert (_quote(first).status, _quote(newcomer).status) == ("choice_ended", "chosen")
    told = [email.body_text for email in emails("coordinator_patient_request")]
    assert sum("The patient chose the quote of" in text for text in told) == 2
    booked = [email.body_text for email in emails("coordinator_booking")]
    assert sum("confirmed the treatment is booked" in text for text in booked) == 2


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("chosen", "Only the patient chooses a clinic"),
        ("quoted", "A lead becomes quoted when a clinic sends its first quote"),
    ],
)
def test_a_coordinator_cannot_set_the_statuses_that_follow_the_quotes(client, accepted, app, target, message):
    lead, first, _ = accepted
    # A live quote for the choice; an expired one (the lead back to contacted) for "quoted".
    client.post(provider(first) + "/quote", data=quote_form(valid_days="1"))
    if target == "quoted":
        with _travel(days=3):
            _sweep()
    current = _status(lead)
    assert current == {"chosen": "quoted", "quoted": "contacted"}[target]
    quote_status = _quote(first).status
    coordinator, _ = signed_in_client(app)
    page = coordinator.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    select = page[page.index('id="status-status"') :]
    assert f'value="{target}"' not in select[: select.index("</select>")]
    response = coordinator.post(
        f"/staff/leads/{lead.id}/status",
        data={"status-status": target, "status-current_status": current},
        follow_redirects=True,
    )
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert _status(lead) == current and _quote(first).status == quote_status
    assert events(lead, "quotes_closed") == []


def test_the_patients_data_export_holds_their_quotes_with_every_revision(client, accepted):
    lead, first, second = accepted
    client.post(provider(first) + "/quote", data=quote_form())
    client.post(provider(first) + "/quote", data=quote_form(price_from="18000", message="New price"))
    client.post(
        provider(second) + "/quote", data=quote_form(currency="DKK", price_from="150000", price_to="160000")
    )
    document = export_patient(lead.reference, user_id=None, chosen=[lead.reference])
    [request] = document["requests"]
    by_clinic = {q["provider"]: q for q in request["quotes"]}
    revised = by_clinic[first.provider.name]
    assert revised["status"] == "live"
    assert [(r["number"], r["price_from"], r["currency"]) for r in revised["revisions"]] == [
        (1, 20000, "EUR"),
        (2, 18000, "EUR"),
    ]
    assert revised["revisions"][1]["message"] == "New price"
    assert revised["revisions"][0]["includes"] == ["treatment", "rehabilitation"]
    assert by_clinic[second.provider.name]["revisions"][0]["price_to"] == 160000

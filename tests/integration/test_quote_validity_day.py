"""A quote's validity is a Danish calendar day (the clinic counts its days in Denmark, to 23:59
Danish time): every reader is shown that day, said to be Danish time, never the same moment moved
into their own zone, where a patient in Helsinki read the next day ("13 December, 00.59 EET")."""

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from babel.dates import format_date

from leads.extensions import db
from leads.patients.privacy import export_patient
from leads.quotes import service as quotes
from leads.workdays import DANISH_TIME, danish_date
from tests.integration.test_quotes import patient, provider, two_clinics_accept
from tests.quote_support import offer
from tests.staff_support import signed_in_client


@pytest.fixture
def quoted_in_helsinki(app, client, taxonomy):
    """A patient in Finland (one zone, an hour east of Denmark) with a live quote valid 30 days;
    the lead, the clinic's assignment, the quote and the Danish day it is valid through."""
    lead, first, _ = two_clinics_accept(client)
    lead.country = "FI"
    quote = quotes.send_quote(first.id, offer(valid_days=30))
    db.session.commit()
    last_day = danish_date(quote.current.created_at) + timedelta(days=30)
    return lead, first, quote, last_day


def _long(day: date, language: str = "en") -> str:
    return format_date(day, "long", locale=language)


def _valid_until(page: str) -> str:
    return re.search(r"Valid until</dt><dd>(.*?)</dd>", page)[1]


def test_a_patient_east_of_denmark_reads_the_danish_day_said_as_danish_time_not_the_next_day(
    client, quoted_in_helsinki
):
    lead, _, quote, last_day = quoted_in_helsinki
    # The edge itself: the end of the Danish day is already the next day in Helsinki.
    assert quote.current.valid_until.astimezone(DANISH_TIME).date() == last_day
    assert quote.current.valid_until.astimezone(ZoneInfo("Europe/Helsinki")).date() == last_day + timedelta(
        days=1
    )
    for url in (patient(lead), f"{patient(lead)}/quotes/{quote.id}/choose"):
        page = client.get(f"{url}?language=en").get_data(as_text=True)
        assert _valid_until(page) == f"{_long(last_day)} (Danish time)", url
        assert _long(last_day + timedelta(days=1)) not in page and "EET" not in _valid_until(page)


def test_an_expired_quote_names_the_danish_day_it_expired_on_and_so_does_the_refused_choice(
    client, quoted_in_helsinki
):
    lead, _, quote, last_day = quoted_in_helsinki
    with time_machine.travel(quote.current.valid_until + timedelta(minutes=1), tick=False):
        page = client.get(f"{patient(lead)}/quotes/{quote.id}/choose?language=en", follow_redirects=True)
        text = page.get_data(as_text=True)
    assert f"This quote expired on {_long(last_day)} (Danish time), so it can no longer be chosen." in text
    assert re.search(rf"The quote from <bdi>[^<]+</bdi> expired on {_long(last_day)} \(Danish time\)\.", text)


def test_the_clinic_and_a_coordinator_in_another_zone_read_the_same_danish_day(
    app, client, quoted_in_helsinki
):
    lead, first, _, last_day = quoted_in_helsinki
    clinic_page = client.get(provider(first)).get_data(as_text=True)
    assert _valid_until(clinic_page) == f"{_long(last_day)} (Danish time)"
    coordinator, _ = signed_in_client(app, time_zone="Europe/Helsinki")
    lead_page = coordinator.get(f"/staff/leads/{lead.id}").get_data(as_text=True)
    assert f"<td>{_long(last_day)} (Danish time)</td>" in lead_page
    assert _long(last_day + timedelta(days=1)) not in lead_page


def test_the_patients_data_export_names_the_danish_day_beside_the_exact_moment(quoted_in_helsinki):
    """The export keeps the stored moment (`valid_until`, UTC) and gives the day the patient and
    the clinic were shown (`last_valid_day`), which the moment alone, read in a reader's own zone,
    does not say."""
    lead, _, quote, last_day = quoted_in_helsinki
    document = export_patient(lead.reference, user_id=None, chosen=[lead.reference])
    [request] = document["requests"]
    [exported] = request["quotes"]
    [revision] = exported["revisions"]
    assert revision["valid_until"] == quote.current.valid_until.isoformat()
    assert revision["last_valid_day"] == last_day.isoformat()

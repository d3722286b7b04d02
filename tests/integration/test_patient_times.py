"""The patient's own page states the zone of every time it shows: the patient's own zone when
their country keeps one clock, else UTC, named either way."""

from datetime import UTC, datetime

from leads.extensions import db
from leads.messaging.urls import patient_link
from tests.factories import LeadFactory

SENT = datetime(2026, 11, 28, 14, 5, tzinfo=UTC)


def _page(client, lead, language="en") -> str:
    path = "/my-request/" + patient_link(lead.id).rsplit("/my-request/", 1)[1]
    return client.get(f"{path}?language={language}").get_data(as_text=True)


def test_a_patient_in_denmark_reads_danish_time_named_cet(client, taxonomy):
    lead = LeadFactory(country="DK", created_at=SENT)
    db.session.commit()
    assert "Sent on November 28, 2026, 3:05\u202fPM CET." in _page(client, lead)
    assert "28. november 2026 15.05 CET" in _page(client, lead, "da")


def test_a_patient_whose_country_spans_zones_reads_utc_named(client, taxonomy):
    lead = LeadFactory(country="US", created_at=SENT)
    db.session.commit()
    assert "Sent on November 28, 2026, 2:05\u202fPM UTC." in _page(client, lead)

"""Staff pages show dates and times in the reader's own time zone (Europe/Copenhagen unless they
chose another in their settings), the zone always named; a zone that is not on the list changes
nothing."""

from datetime import UTC, datetime

from leads.extensions import db
from leads.models import User
from tests.factories import LeadFactory
from tests.staff_support import signed_in_client

# 11:30 UTC on a winter day: 12:30 in Copenhagen (CET), 06:30 in New York (EST).
RECEIVED = datetime(2026, 1, 15, 11, 30, tzinfo=UTC)


def _lead_page(client, lead) -> str:
    return client.get(f"/staff/leads/{lead.id}").get_data(as_text=True)


def test_times_are_danish_by_default_with_the_zone_named(app, taxonomy):
    lead = LeadFactory(created_at=RECEIVED)
    db.session.commit()
    client, _ = signed_in_client(app)
    assert "2026-01-15 12:30 CET" in _lead_page(client, lead)
    assert "11:30 UTC" not in _lead_page(client, lead)


def test_a_coordinator_chooses_their_zone_and_every_time_follows(app, taxonomy):
    lead = LeadFactory(created_at=RECEIVED)
    db.session.commit()
    client, user = signed_in_client(app)
    form = client.get("/staff/account/settings").get_data(as_text=True)
    assert '<option selected value="Europe/Copenhagen">' in form

    response = client.post(
        "/staff/account/settings", data={"time_zone": "America/New_York", "language": "en"}
    )
    assert response.status_code == 302
    assert db.session.get(User, user.id).time_zone == "America/New_York"
    assert "2026-01-15 06:30 EST" in _lead_page(client, lead)


def test_a_zone_not_on_the_list_is_refused_and_changes_nothing(app, taxonomy):
    client, user = signed_in_client(app)
    for bad in ("Mars/Olympus_Mons", "", "../etc/passwd"):
        response = client.post("/staff/account/settings", data={"time_zone": bad, "language": "en"})
        assert response.status_code == 400
        assert "Choose a time zone" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).time_zone == "Europe/Copenhagen"


def test_one_coordinators_zone_is_not_anothers(app, taxonomy):
    lead = LeadFactory(created_at=RECEIVED)
    db.session.commit()
    tokyo, _ = signed_in_client(app, time_zone="Asia/Tokyo")
    copenhagen, _ = signed_in_client(app)
    assert "2026-01-15 20:30 JST" in _lead_page(tokyo, lead)
    assert "2026-01-15 12:30 CET" in _lead_page(copenhagen, lead)

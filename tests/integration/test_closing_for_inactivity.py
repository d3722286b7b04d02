"""Coordinators see an open request that retention will close for inactivity before it does: the
queue's "closing" filter and a notice on the lead page, by the run's own rule."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Lead, Role
from leads.patients import privacy
from leads.timeutil import utcnow
from tests.integration.test_privacy import _lead
from tests.staff_support import signed_in_client

# The rule's SQL (dates, correlated subqueries): run again on PostgreSQL.
pytestmark = pytest.mark.pg

MONTH = timedelta(days=30)  # retention's month
NOTICE = "Nothing has happened to this request for almost 24 months."


def _idle(months: float, **fields) -> Lead:
    """A lead nothing has happened to for `months` (its row unchanged, no history entry)."""
    return _lead(updated_at=utcnow() - months * MONTH, created_at=utcnow() - months * MONTH, **fields)


@pytest.fixture
def idle_leads(app, taxonomy):
    return {
        "closing": _idle(23.5, status="routed", full_name="Clara Closing"),
        "not yet": _idle(22, status="routed", full_name="Nora Notyet"),
        "ended": _idle(23.5, status="closed_lost", full_name="Eddie Ended"),
        "erasure asked": _idle(
            23.5, status="routed", full_name="Erik Erasure", erasure_requested_at=utcnow()
        ),
    }


def _listed(client, **args) -> str:
    return client.get("/staff/leads", query_string=args).get_data(as_text=True)


def test_the_filter_lists_the_open_requests_retention_closes_within_thirty_days(app, idle_leads):
    client, _ = signed_in_client(app, Role.COORDINATOR)
    html = _listed(client, closing="y")
    assert "<bdi>Clara Closing</bdi>" in html
    for other in ("Nora Notyet", "Eddie Ended", "Erik Erasure"):
        assert f"<bdi>{other}</bdi>" not in html

    # The run's own rule: thirty days on, it closes exactly what the filter listed.
    result = privacy.apply_retention(now=utcnow() + privacy.CLOSING_WARNING)
    db.session.expire_all()
    assert result.stalled_leads == 1
    assert db.session.get(Lead, idle_leads["closing"].id).status == "closed_lost"
    assert db.session.get(Lead, idle_leads["not yet"].id).status == "routed"


def test_the_lead_page_warns_until_someone_acts_on_the_request(app, idle_leads):
    client, _ = signed_in_client(app, Role.COORDINATOR)
    closing = idle_leads["closing"]
    assert NOTICE in client.get(f"/staff/leads/{closing.id}").get_data(as_text=True)
    assert NOTICE not in client.get(f"/staff/leads/{idle_leads['not yet'].id}").get_data(as_text=True)

    client.post(f"/staff/leads/{closing.id}/notes", data={"note-note": "Emailed the patient to ask."})

    assert NOTICE not in client.get(f"/staff/leads/{closing.id}").get_data(as_text=True)
    assert "<bdi>Clara Closing</bdi>" not in _listed(client, closing="y")
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(Lead.anonymised_at.is_not(None)))
        == 0
    )

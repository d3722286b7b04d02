"""Hypothesis over the sign-in form, the staff queue filters, the provider's answer and the
patient's page: whatever arrives, no 500, and a refused request writes nothing.

SECURITY_FUZZ_EXAMPLES sets the number of examples per test (300 by default: 1,200 inputs in all).
"""

import os

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.extensions import db
from leads.messaging.tokens import make_assignment_token, make_patient_token
from leads.models import Assignment, LeadEvent
from leads.staff.queue_views import FILTER_FIELDS
from tests.factories import AssignmentFactory
from tests.staff_support import make_staff, signed_in_client

FUZZ = settings(
    max_examples=int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Any text a browser or a script could send, control characters and odd Unicode included.
junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
field_values = st.one_of(
    junk, st.sampled_from(["", "open", "new", "mine", "y", "2026-13-45", "DK", "-1", "0"])
)


@pytest.fixture
def open_limits(app):
    app.config["LOGIN_RATE_LIMIT"] = "100000 per minute"
    return app


@FUZZ
@given(email=junk, password=junk)
def test_the_login_form_never_fails_and_never_signs_in_a_wrong_password(open_limits, email, password):
    app = open_limits
    client = app.test_client()
    response = client.post("/staff/login", data={"email": email, "password": password})
    assert response.status_code == 200  # the form again, with a generic error
    with client.session_transaction() as session:
        assert "_user_id" not in session


@FUZZ
@given(filters=st.dictionaries(st.sampled_from([*FILTER_FIELDS, "after", "before", "search"]), field_values))
def test_queue_filters_never_fail(app, staff_client, filters):
    response = staff_client.get("/staff/leads", query_string={k: v for k, v in filters.items() if k != "q"})
    assert response.status_code in (200, 400)
    searched = staff_client.post("/staff/leads", data=filters)
    assert searched.status_code == 303
    assert staff_client.get(searched.headers["Location"]).status_code in (200, 400)


@pytest.fixture
def staff_client(app):
    client, _ = signed_in_client(app)
    return client


@pytest.fixture
def assignment(app):
    made = AssignmentFactory()
    make_staff()
    db.session.commit()
    return made


def _events(lead_id) -> int:
    count = db.session.scalar(sa.select(sa.func.count(LeadEvent.id)).filter_by(lead_id=lead_id))
    db.session.rollback()
    return count


@FUZZ
@given(
    action=st.sampled_from(["accept", "decline"]),
    form=st.fixed_dictionaries(
        {},
        optional={
            "note": junk,
            "reason": st.one_of(junk, st.sampled_from(["no_capacity", "not_suitable", "other"])),
            "decline_note": junk,
        },
    ),
)
def test_the_provider_answer_never_fails_and_a_refusal_writes_nothing(app, assignment, action, form):
    token = make_assignment_token(assignment.id)
    status_before = db.session.scalar(sa.select(Assignment.status).filter_by(id=assignment.id))
    events_before = _events(assignment.lead_id)
    response = app.test_client().post(f"/p/{token}/{action}", data=form)
    assert response.status_code in (303, 400, 409, 410)
    status_after = db.session.scalar(sa.select(Assignment.status).filter_by(id=assignment.id))
    if response.status_code != 303:
        assert status_after == status_before and _events(assignment.lead_id) == events_before
    db.session.rollback()


@FUZZ
@given(
    token=junk,
    action=st.sampled_from(["", "/withdraw", "/erase"]),
    form=st.dictionaries(junk, junk, max_size=4),
)
def test_the_patient_page_never_fails_on_any_token(app, assignment, token, action, form):
    client = app.test_client()
    events_before = _events(assignment.lead_id)
    path = f"/my-request/{token.replace('/', '')}{action}" if token.strip("/") else "/my-request/x"
    response = client.post(path, data=form) if action else client.get(path)
    assert response.status_code in (400, 404, 405, 410)
    assert _events(assignment.lead_id) == events_before
    real = make_patient_token(assignment.lead_id)
    assert client.post(f"/my-request/{real}{action or '/withdraw'}", data=form).status_code < 500

"""Staff sessions can be revoked: a copied cookie dies at sign-out, password change, reset and
deactivation; sessions end after an idle time and a total lifetime; sign-in starts a fresh session."""

from datetime import timedelta

import time_machine

from leads.extensions import db, login_manager
from leads.models import LeadEvent, Role
from tests.factories import LeadFactory
from tests.helpers import count_rows
from tests.staff_support import PASSWORD, fresh_client, make_staff, sign_in, signed_in_client

NEW_PASSWORD = "a different long passphrase"


def _copy_of(app, client):
    """A second client carrying a copy of `client`'s session cookie, as a thief would."""
    thief = fresh_client(app)
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _signed_in(client) -> bool:
    return client.get("/staff/leads").status_code == 200


def test_a_copied_cookie_stops_working_when_its_owner_signs_out(app):
    client, _ = signed_in_client(app)
    thief = _copy_of(app, client)
    assert _signed_in(thief)
    assert client.post("/staff/logout").status_code == 302
    assert not _signed_in(thief)
    assert not _signed_in(client)


def test_changing_ones_password_ends_every_other_session_but_keeps_this_one(app):
    client, user = signed_in_client(app)
    other = fresh_client(app)
    assert sign_in(other, user).status_code == 302
    response = client.post(
        "/staff/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert _signed_in(client)
    assert not _signed_in(other)


def test_an_admins_reset_ends_the_users_sessions(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    client, user = signed_in_client(app)
    response = admin.post(f"/staff/admin/users/{user.id}/password", data={"password": NEW_PASSWORD})
    assert response.status_code == 302
    assert not _signed_in(client)


def test_reactivating_a_user_does_not_bring_old_cookies_back(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    client, user = signed_in_client(app)
    thief = _copy_of(app, client)
    admin.post(f"/staff/admin/users/{user.id}/active", data={"active": "0"})
    admin.post(f"/staff/admin/users/{user.id}/active", data={"active": "1"})
    assert not _signed_in(thief)


def test_the_cli_reset_ends_the_users_sessions(app, runner):
    client, user = signed_in_client(app)
    result = runner.invoke(args=["users", "set-password", user.email, "--password-stdin"], input=NEW_PASSWORD)
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert not _signed_in(client)


def test_signing_in_starts_a_fresh_session(app):
    client = fresh_client(app)
    user = make_staff()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    assert sign_in(client, user).status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session


def test_signing_out_clears_the_session(app):
    client, _ = signed_in_client(app)
    with client.session_transaction() as session:
        session["left_over"] = "x"
    client.post("/staff/logout")
    with client.session_transaction() as session:
        assert "left_over" not in session and "_user_id" not in session


def test_a_session_ends_after_the_idle_time(app):
    with time_machine.travel(0, tick=False) as clock:
        clock.move_to("2030-01-07 09:00Z")
        client, _ = signed_in_client(app)
        clock.shift(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] - 1))
        assert _signed_in(client)  # activity keeps it alive
        clock.shift(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] - 1))
        assert _signed_in(client)
        clock.shift(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1))
        assert not _signed_in(client)


def test_a_form_sent_after_the_session_ended_leads_back_to_its_page_after_signing_in(app, taxonomy):
    """Not to the form's own address, which answers only POST (a 405 after signing in); the
    sign-in page says that what was sent is not saved, and nothing was."""
    with time_machine.travel(0, tick=False) as clock:
        clock.move_to("2030-01-07 09:00Z")
        client, user = signed_in_client(app)
        lead = LeadFactory()
        db.session.commit()
        page = f"/staff/leads/{lead.id}?back=/staff/leads?status%3Dnew"
        assert client.get(page).status_code == 200
        clock.shift(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1))
        response = client.post(
            f"/staff/leads/{lead.id}/notes",
            data={"note-note": "Called the patient."},
            headers={"Referer": f"http://localhost{page}"},
        )
        assert response.status_code == 302
        login = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "Your session expired, so that was not saved. Sign in, then do it again." in login
        signed_in = client.post(
            response.headers["Location"], data={"email": user.email, "password": PASSWORD}
        )
        assert signed_in.headers["Location"] == page
        assert client.get(page).status_code == 200
    assert count_rows(LeadEvent, lead_id=lead.id, kind="note") == 0


def test_a_page_asked_for_after_the_session_ended_opens_after_signing_in(app, taxonomy):
    with time_machine.travel(0, tick=False) as clock:
        clock.move_to("2030-01-07 09:00Z")
        client, user = signed_in_client(app)
        clock.shift(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1))
        response = client.get("/staff/leads?status=new&country=NO")
        assert "Sign in to see that page." in client.get(response.headers["Location"]).get_data(as_text=True)
        signed_in = client.post(
            response.headers["Location"], data={"email": user.email, "password": PASSWORD}
        )
        assert signed_in.headers["Location"] == "/staff/leads?status=new&country=NO"


def test_a_session_ends_after_its_absolute_lifetime_however_busy(app):
    assert (app.config["SESSION_IDLE_MINUTES"], app.config["SESSION_MAX_HOURS"]) == (30, 12)
    with time_machine.travel(0, tick=False) as clock:
        clock.move_to("2030-01-07 07:00Z")
        client, _ = signed_in_client(app)
        for _ in range(app.config["SESSION_MAX_HOURS"] * 3 - 1):
            clock.shift(timedelta(minutes=20))
            assert _signed_in(client)
        clock.shift(timedelta(minutes=21))
        assert not _signed_in(client)


def test_session_protection_does_not_trust_a_client_supplied_forwarded_for(app):
    # "strong" hashes X-Forwarded-For, which the attacker sets to the victim's address.
    assert login_manager.session_protection is None
    client, _ = signed_in_client(app)
    assert client.get("/staff/leads", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200


def test_the_change_password_form_is_rate_limited_per_account(app):
    client, _ = signed_in_client(app)
    limit = int(app.config["LOGIN_RATE_LIMIT"].split()[0])
    wrong = {"current_password": "guess", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    statuses = []
    for n in range(limit + 1):
        client.environ_base["REMOTE_ADDR"] = f"10.99.0.{n + 1}"  # a new address each time: still counted
        statuses.append(client.post("/staff/account/password", data=wrong).status_code)
    assert statuses[:limit] == [400] * limit
    assert statuses[-1] == 429

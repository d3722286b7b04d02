"""A password an admin or the operator set (a new account, a reset) is a temporary one: every
staff page sends its user to change it, until they choose their own. A wrong current password on
the change form counts as a failed sign-in, so a copied session cannot guess it faster than the
sign-in form can."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from leads.auth.accounts import verify_password
from leads.extensions import db
from leads.models import Role, User
from leads.timeutil import utcnow
from tests.integration.test_security_access import ADMIN, STAFF
from tests.route_support import route_params, route_url
from tests.staff_support import PASSWORD, fresh_client, make_staff, sign_in, signed_in_client

# Runs again on PostgreSQL: the throttle's counter is an upsert written per database.
pytestmark = pytest.mark.pg

NEW_PASSWORD = "a different long passphrase"
CHANGE = "/staff/account/password"
MUST_CHANGE = "Choose a password of your own before you go on."
LOCKED = "Too many wrong passwords: your account is locked for a while from here."
WRONG = "Your current password is not right."


def _user(email: str) -> User:
    user = db.session.scalar(sa.select(User).filter_by(email=email))
    db.session.refresh(user)
    return user


def _change(client, current: str, new: str = NEW_PASSWORD):
    return client.post(
        CHANGE, data={"current_password": current, "new_password": new, "confirm_password": new}
    )


# Who must change their password ----------------------------------------------------------------


def test_an_account_an_admin_creates_must_change_its_password(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    data = {
        "email": "new.person@example.dk",
        "password": "a long temporary passphrase",
        "role": "coordinator",
    }
    assert admin.post("/staff/admin/users", data=data).status_code == 302
    assert "choose their own at their first sign-in" in admin.get("/staff/admin/users").get_data(as_text=True)
    assert _user("new.person@example.dk").must_change_password is True


def test_an_admins_reset_makes_the_user_change_the_password(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    user = make_staff()
    response = admin.post(f"/staff/admin/users/{user.id}/password", data={"password": NEW_PASSWORD})
    assert response.status_code == 302
    assert "choose their own at their next sign-in" in admin.get("/staff/admin/users").get_data(as_text=True)
    assert _user(user.email).must_change_password is True


def test_the_operators_create_and_set_password_make_the_user_change_it(app, runner):
    created = runner.invoke(
        args=["users", "create", "cli@example.dk", "--role", "coordinator", "--password-stdin"],
        input=NEW_PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.output
    assert "first sign-in" in created.output
    assert _user("cli@example.dk").must_change_password is True

    user = make_staff(email="other@example.dk")
    result = runner.invoke(args=["users", "set-password", user.email, "--password-stdin"], input=NEW_PASSWORD)
    assert result.exit_code == 0, result.output
    assert _user(user.email).must_change_password is True


def test_an_account_made_otherwise_need_not_change_its_password(app):
    client, user = signed_in_client(app)
    assert client.get("/staff/leads").status_code == 200
    assert _user(user.email).must_change_password is False


# Until they do, every staff page sends them to change it ----------------------------------------


OTHER_PAGES = [
    p for p in route_params(ADMIN | STAFF) if p.values[0] not in ("staff.change_password", "auth.logout")
]


@pytest.mark.parametrize(("endpoint", "method"), OTHER_PAGES)
def test_every_other_staff_page_sends_them_to_change_it(app, real, endpoint, method):
    client, _ = signed_in_client(app, Role.ADMIN, must_change_password=True)
    response = client.open(route_url(app, endpoint, real), method=method)
    assert response.status_code == 302
    assert response.headers["Location"] == CHANGE


def test_the_change_page_says_why_and_sign_out_and_static_files_stay_reachable(app):
    client, _ = signed_in_client(app, must_change_password=True)
    page = client.get("/staff/leads", follow_redirects=True)
    assert page.request.path == CHANGE and page.status_code == 200
    assert MUST_CHANGE in page.get_data(as_text=True)
    assert client.get("/static/css/staff.css").status_code == 200
    assert client.post("/staff/logout").status_code == 302
    assert client.get("/staff/leads").headers["Location"].startswith("/staff/login")


def test_an_account_made_on_the_command_line_is_told_its_password_was_set_for_it_not_by_an_admin(app, runner):
    """The words hold whoever set the password (an admin, or the operator's `flask users create`),
    as a notice under a heading that says what to do, not under "Done"."""
    created = runner.invoke(
        args=["users", "create", "cli@example.dk", "--role", "coordinator", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.output
    client = fresh_client(app)
    assert sign_in(client, _user("cli@example.dk")).status_code == 302
    response = client.get("/staff/", follow_redirects=True)
    page = " ".join(response.get_data(as_text=True).split())
    assert response.request.path == CHANGE
    assert '<p class="notice">Your password was set for you. ' + MUST_CHANGE + "</p>" in page
    assert "<h1>Choose your own password</h1>" in page
    for wrong in ("administrator", "Done", 'role="status"', 'role="alert"'):
        assert wrong not in page, wrong
    # Their own password chosen, the page is an ordinary one again.
    assert _change(client, PASSWORD).status_code == 302
    page = client.get(CHANGE).get_data(as_text=True)
    assert "<h1>Change my password</h1>" in page and "set for you" not in page


def test_the_same_password_again_is_refused_and_their_own_frees_them(app):
    client, user = signed_in_client(app, must_change_password=True)
    same = _change(client, PASSWORD, PASSWORD)
    assert same.status_code == 400 and "differs from the current one" in same.get_data(as_text=True)
    assert _user(user.email).must_change_password is True
    assert client.get("/staff/leads").status_code == 302

    assert _change(client, PASSWORD).status_code == 302
    user = _user(user.email)
    assert user.must_change_password is False and verify_password(user.password_hash, NEW_PASSWORD)
    assert client.get("/staff/leads").status_code == 200


# Wrong current passwords feed the sign-in throttle ---------------------------------------------


def test_wrong_current_passwords_lock_the_form_and_the_sign_in_with_doubling_waits(app):
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"  # the per-account rate limit is tested elsewhere
    limit, minutes = app.config["LOGIN_MAX_FAILURES"], app.config["LOGIN_LOCKOUT_MINUTES"]
    client, user = signed_in_client(app)
    client.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    with time_machine.travel(utcnow(), tick=False) as clock:
        for _ in range(limit):
            assert WRONG in _change(client, "guess").get_data(as_text=True)
        locked = _change(client, PASSWORD)  # the right one is not even checked while locked
        assert locked.status_code == 400 and LOCKED in locked.get_data(as_text=True)
        assert verify_password(_user(user.email).password_hash, PASSWORD)
        # The same account from the same address is locked at the sign-in form as well.
        thief = fresh_client(app)
        thief.environ_base["REMOTE_ADDR"] = "198.51.100.20"
        assert thief.post("/staff/login", data={"email": user.email, "password": PASSWORD}).status_code == 200

        clock.shift(timedelta(minutes=minutes + 1))
        for _ in range(limit):
            assert WRONG in _change(client, "guess").get_data(as_text=True)
        clock.shift(timedelta(minutes=minutes + 1))  # the second round waits twice as long
        assert LOCKED in _change(client, PASSWORD).get_data(as_text=True)
        clock.shift(timedelta(minutes=minutes))
        assert _change(client, PASSWORD).status_code == 302


def test_the_owner_elsewhere_is_not_locked_by_guesses_from_a_copied_session(app):
    app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    client, user = signed_in_client(app)
    client.environ_base["REMOTE_ADDR"] = "198.51.100.21"
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _change(client, "guess")
    owner = fresh_client(app)
    assert sign_in(owner, user).status_code == 302

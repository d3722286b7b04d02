"""Managing staff accounts: an admin creates, deactivates, reactivates and resets; everyone
changes their own password; the same from the command line."""

import re
import time

import pytest
import sqlalchemy as sa

from leads.auth import accounts
from leads.auth.accounts import verify_password
from leads.extensions import db
from leads.models import Role, User
from leads.models.staff import LoginThrottle
from tests.factories import UserFactory
from tests.helpers import at_once, committed_once_waited_on, count_rows
from tests.staff_support import PASSWORD, ahead, fresh_client, make_staff, sign_in, signed_in_client

NEW_PASSWORD = "a brand new passphrase"


def _user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).filter_by(email=email))


def test_an_admin_creates_a_coordinator_who_can_then_sign_in(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    response = admin.post(
        "/staff/admin/users",
        data={"email": "New.Person@Example.dk", "role": "coordinator", "password": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert "Created coordinator new.person@example.dk" in admin.get("/staff/admin/users").get_data(
        as_text=True
    )
    created = _user("new.person@example.dk")
    assert created.role == "coordinator" and created.password_hash.startswith("$argon2id$")
    assert sign_in(fresh_client(app), created, NEW_PASSWORD).status_code == 302


def test_creating_a_user_with_bad_input_says_what_is_wrong(app):
    admin, me = signed_in_client(app, Role.ADMIN)
    cases = [
        ({"email": "not-an-address", "role": "coordinator", "password": NEW_PASSWORD},
         "Not a valid email address"),
        ({"email": me.email, "role": "coordinator", "password": NEW_PASSWORD}, "already exists"),
        ({"email": "short@example.dk", "role": "coordinator", "password": "short"}, "at least 12 characters"),
        ({"email": "role@example.dk", "role": "superuser", "password": NEW_PASSWORD},
         "Choose admin or coordinator"),
    ]  # fmt: skip
    for data, message in cases:
        response = admin.post("/staff/admin/users", data=data)
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), data
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


TAKEN = "A user with the address new.person@example.dk already exists"


def _email_error(html: str) -> str | None:
    found = re.search(r'<p class="field-error" id="[\w-]*email-error">([^<]*)</p>', html)
    return found and found.group(1)


@pytest.mark.pg
def test_an_address_another_admin_adds_while_the_password_is_hashed_is_explained_at_the_address(
    app, monkeypatch
):
    """The check for the address ran before the other admin's account was committed."""
    admin, _ = signed_in_client(app, Role.ADMIN)
    real_hash = accounts.hash_password

    def hash_while_another_admin_adds_the_address(password):
        if not count_rows(User, email="new.person@example.dk"):
            UserFactory(email="new.person@example.dk")
            db.session.commit()
        return real_hash(password)

    monkeypatch.setattr(accounts, "hash_password", hash_while_another_admin_adds_the_address)
    response = admin.post(
        "/staff/admin/users",
        data={"email": "New.Person@Example.dk", "role": "admin", "password": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert _email_error(response.get_data(as_text=True)) == TAKEN
    assert _user("new.person@example.dk").role == "coordinator"  # the other admin's


@pytest.mark.pg
@pytest.mark.pg_only  # SQLite runs one writer at a time, from its first statement to its commit
@pytest.mark.commits  # the other admin's account is another connection's
def test_two_admins_adding_the_same_address_at_once_keep_one_account_and_the_second_is_told(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    with committed_once_waited_on(app, lambda: UserFactory(email="new.person@example.dk")):
        response = admin.post(
            "/staff/admin/users",
            data={"email": "new.person@example.dk", "role": "admin", "password": NEW_PASSWORD},
        )
    assert response.status_code == 400
    assert _email_error(response.get_data(as_text=True)) == TAKEN
    assert _user("new.person@example.dk").role == "coordinator"


def test_a_deactivated_user_is_signed_out_and_can_be_reactivated(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    coordinator, user = signed_in_client(app, Role.COORDINATOR)
    assert admin.post(f"/staff/admin/users/{user.id}/active", data={"active": "0"}).status_code == 302
    assert _user(user.email).active is False
    assert coordinator.get("/staff/leads").status_code == 302  # back to the login page
    assert sign_in(fresh_client(app), user).status_code == 200  # refused
    admin.post(f"/staff/admin/users/{user.id}/active", data={"active": "1"})
    assert _user(user.email).active is True
    assert sign_in(fresh_client(app), user).status_code == 302


def test_an_admin_cannot_deactivate_themselves_or_the_last_admin(app):
    admin, me = signed_in_client(app, Role.ADMIN)
    admin.post(f"/staff/admin/users/{me.id}/active", data={"active": "0"})
    page = admin.get("/staff/admin/users").get_data(as_text=True)
    assert "You cannot deactivate your own account." in page
    assert _user(me.email).active is True

    from leads.auth.accounts import AccountError
    from leads.staff import user_admin

    try:
        user_admin.set_active(_user(me.email), False)
    except AccountError as exc:
        assert "last active admin" in str(exc)
    else:
        raise AssertionError("the last admin was deactivated")


@pytest.mark.pg
@pytest.mark.pg_only  # SQLite runs one writer at a time
@pytest.mark.commits
def test_two_admins_deactivating_each_other_at_once_leave_one_admin(app):
    """Each counts the active admins before the other's deactivation commits."""
    from leads.auth.accounts import AccountError
    from leads.staff import user_admin

    pairs = [(make_staff(Role.ADMIN).id, make_staff(Role.ADMIN).id)]
    pairs.append(pairs[0][::-1])

    def deactivate_the_other():
        me, other = pairs.pop()
        try:
            user_admin.set_active(db.session.get(User, other), False, acting_user_id=me)
        except AccountError:
            db.session.rollback()
            return "refused"
        time.sleep(0.5)  # the other admin's request runs meanwhile
        db.session.commit()
        return "deactivated"

    assert sorted(at_once(app, deactivate_the_other)) == ["deactivated", "refused"]
    active = db.session.scalar(sa.select(sa.func.count()).select_from(User).filter_by(active=True))
    assert active == 1


def test_an_admin_resets_a_locked_out_password_and_the_lockout_is_lifted(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    user = make_staff()
    blocked = LoginThrottle(account=user.email, client="10.0.0.1", blocked_until=ahead(minutes=9))
    db.session.add(blocked)
    db.session.commit()
    response = admin.post(f"/staff/admin/users/{user.id}/password", data={"password": NEW_PASSWORD})
    assert response.status_code == 302
    user = _user(user.email)
    assert db.session.scalar(sa.select(LoginThrottle).filter_by(account=user.email)) is None
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert sign_in(fresh_client(app), user, NEW_PASSWORD).status_code == 302


def test_a_too_short_reset_password_is_refused_next_to_the_right_user(app):
    admin, _ = signed_in_client(app, Role.ADMIN)
    user = make_staff()
    response = admin.post(f"/staff/admin/users/{user.id}/password", data={"password": "short"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'id="password-{user.id}-error"' in html and "at least 12 characters" in html
    assert verify_password(_user(user.email).password_hash, PASSWORD)


def test_the_error_summary_of_a_reset_leads_to_that_user_s_field_and_names_them(app):
    """The page holds one reset form per user and the form to add one: the summary's link must
    focus the reset field that failed, not the new account's password, and say whose it is."""
    admin, _ = signed_in_client(app, Role.ADMIN)
    user = make_staff(email="bo@example.dk")
    html = admin.post(f"/staff/admin/users/{user.id}/password", data={"password": "short"}).get_data(
        as_text=True
    )
    summary = html[html.index('id="error-summary"') : html.index("</ul>", html.index('id="error-summary"'))]
    [link] = re.findall(r'<a href="#([^"]+)">([^<]*)</a>', summary)
    assert link[0] == f"password-{user.id}"
    assert f'id="password-{user.id}"' in html
    assert "bo@example.dk" in link[1] and "at least 12 characters" in link[1]


def test_an_admin_is_sent_to_change_their_own_password_with_the_current_one_and_stays_signed_in(app):
    admin, me = signed_in_client(app, Role.ADMIN)
    users_page = admin.get("/staff/admin/users").get_data(as_text=True)
    assert f'id="password-{me.id}"' not in users_page and 'href="/staff/account/password"' in users_page

    response = admin.post(f"/staff/admin/users/{me.id}/password", data={"password": NEW_PASSWORD})

    assert response.status_code == 302 and response.headers["Location"] == "/staff/account/password"
    page = admin.get(response.headers["Location"])
    assert page.status_code == 200  # still signed in
    assert "it asks for your current one" in page.get_data(as_text=True)
    me = _user(me.email)
    assert verify_password(me.password_hash, PASSWORD) and me.session_version == 0


def test_a_coordinator_changes_their_own_password(app):
    client, user = signed_in_client(app)
    response = client.post(
        "/staff/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert verify_password(_user(user.email).password_hash, NEW_PASSWORD)


def test_changing_a_password_explains_each_mistake(app):
    client, user = signed_in_client(app)
    cases = [
        ({"current_password": "wrong one", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
         "Your current password is not right."),
        ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": "something else"},
         "The two new passwords are not the same"),
        ({"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
         "at least 12 characters"),
        ({"current_password": PASSWORD, "new_password": PASSWORD, "confirm_password": PASSWORD},
         "differs from the current one"),
    ]  # fmt: skip
    for data, message in cases:
        response = client.post("/staff/account/password", data=data)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    assert verify_password(_user(user.email).password_hash, PASSWORD)


# Command line --------------------------------------------------------------------------------


def test_the_cli_deactivates_and_reactivates_a_user(app, runner):
    user = make_staff(email="cli@example.dk")
    result = runner.invoke(args=["users", "deactivate", "CLI@example.dk"])
    assert result.exit_code == 0 and "Deactivated cli@example.dk" in result.output
    assert _user(user.email).active is False
    result = runner.invoke(args=["users", "activate", "cli@example.dk"])
    assert result.exit_code == 0 and _user(user.email).active is True


def test_the_cli_sets_a_password_from_standard_input(app, runner):
    user = make_staff(email="cli@example.dk")
    result = runner.invoke(
        args=["users", "set-password", user.email, "--password-stdin"], input=NEW_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert verify_password(_user(user.email).password_hash, NEW_PASSWORD)


def test_the_cli_names_the_problem_with_bad_input(app, runner):
    make_staff(email="cli@example.dk")
    unknown = runner.invoke(args=["users", "deactivate", "nobody@example.dk"])
    assert unknown.exit_code == 1 and "No staff account 'nobody@example.dk'" in unknown.output
    short = runner.invoke(
        args=["users", "set-password", "cli@example.dk", "--password-stdin"], input="short\n"
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output

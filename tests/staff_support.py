"""What the staff dashboard tests share: staff accounts, signing in from an address of one's
own (the login rate limit is per client address), a clock for building leads, and a catalog
that marks what it translates."""

import itertools
import threading
from contextlib import contextmanager
from datetime import timedelta

from babel import support

from leads.extensions import db
from leads.models import Role
from leads.timeutil import utcnow
from tests.factories import UserFactory
from tests.helpers import FreshRequestClient

PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


def fresh_client(app) -> FreshRequestClient:
    """A client with cookies of its own (the `app` fixture makes every client a fresh-`g` one)."""
    return app.test_client()


def make_staff(role: str = Role.COORDINATOR, email: str | None = None, **kwargs):
    """A committed staff account whose password is PASSWORD."""
    fields = {"role": role, **kwargs}
    if email:
        fields["email"] = email
    user = UserFactory(**fields)
    db.session.commit()
    return user


def sign_in(client, user, password: str = PASSWORD):
    """Sign `user` in through the real login form; returns the login response."""
    n = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"10.66.{n // 250}.{n % 250 + 1}"
    return client.post("/staff/login", data={"email": user.email, "password": password})


def signed_in_client(app, role: str = Role.COORDINATOR, **kwargs):
    """A fresh test client signed in as a new staff member of `role`; returns (client, user)."""
    client = fresh_client(app)
    user = make_staff(role, **kwargs)
    response = sign_in(client, user)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client, user


def ago(**delta):
    return utcnow() - timedelta(**delta)


def ahead(**delta):
    return utcnow() + timedelta(**delta)


class MarkingCatalog(support.NullTranslations):
    """A catalog that marks every text it is asked for as ⟦text⟧: a text a page shows unmarked
    never went through a catalog, so no translation can ever reach it."""

    def gettext(self, message):
        return f"⟦{message}⟧"

    def ngettext(self, singular, plural, n):
        return self.gettext(singular if n == 1 else plural)

    def pgettext(self, context, message):
        return self.gettext(message)

    def npgettext(self, context, singular, plural, n):
        return self.ngettext(singular, plural, n)

    ugettext, ungettext, upgettext, unpgettext = gettext, ngettext, pgettext, npgettext


@contextmanager
def marking_catalog(app):
    """Pages and messages made inside read every text from a MarkingCatalog."""
    domain = app.extensions["babel"].instance.domain_instance
    domain.get_translations = MarkingCatalog
    try:
        yield
    finally:
        del domain.get_translations


def at_once(app, call, *, threads: int = 6, each: int = 5) -> list:
    """Run `call` `each` times in each of `threads` threads at once, each thread in an app context
    and a session (a connection) of its own, committing after every call; every call's result.
    Sign-in counters are upserts: parallel failures must all be counted."""
    results = []

    def run():
        with app.app_context():
            for _ in range(each):
                results.append(call())
                db.session.commit()
            db.session.remove()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    db.session.expire_all()
    return results

"""Finding leads by what a coordinator types: a reference, an email address, a phone number or
part of a name. Each becomes one WHERE clause for the queue; indexed look-ups wherever the text
allows one, and a single sequential scan for the rest."""

import re

import phonenumbers
import sqlalchemy as sa

from leads.extensions import db
from leads.models import Lead
from leads.models.lead import email_key, same_email, typed_reference

COUNTRY_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
SCAN_ID_CAP = 5000  # a search matching more leads than this reads them in queue order instead

_PHONE = re.compile(r"\+?[\d\s().-]{5,25}")


def _email_condition(address: str):
    """Whole address, any case (`same_email`), every lead holding it found once through the
    index of the stored email keys."""
    return _scanned(same_email(email_key(address)))


def _scanned(condition):
    """A condition found once, by its own index or one plain table scan, as the matching ids.

    Walking the queue's date index and testing each row reads the table in random order; a
    look-up or sequential scan for the matching ids is many times faster. When the matches are
    many (a common name part), the ordered scan finds a page of them quickly anyway.
    """
    ids = db.session.scalars(sa.select(Lead.id).where(condition).limit(SCAN_ID_CAP + 1)).all()
    return Lead.id.in_(ids) if len(ids) <= SCAN_ID_CAP else condition


def _phone_condition(text: str):
    """A number as the patient said it: international, or national with any country code.

    Every way the stored E.164 number could read is tried through the index; only when none
    exists does a (slower) match on the end of the number run, for a partial number.
    """
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") or text.startswith("00"):
        return Lead.phone == "+" + digits.removeprefix("00")
    national = digits.lstrip("0") or digits
    forms = {"+" + digits} | {f"+{code}{number}" for code in COUNTRY_CODES for number in {national, digits}}
    if db.session.scalar(sa.select(Lead.id).where(Lead.phone.in_(forms)).limit(1)) is not None:
        return Lead.phone.in_(forms)
    return _scanned(Lead.phone.endswith(national, autoescape=True))


def search_condition(text: str):
    """The WHERE clause for a search: reference, email, phone or name, whichever it looks like."""
    text = " ".join(text.split())
    compact = text.replace(" ", "").upper()
    reference = typed_reference(compact)
    # Six letters alone may be a name: without "Q-" only a code with a digit is a reference.
    if reference and (compact.startswith("Q-") or any(ch.isdigit() for ch in reference)):
        return Lead.reference == reference
    if "@" in text:
        if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
            return _email_condition(text)
        # Part of an address, in any case: the stored keys and the typed part lower-cased alike in
        # Python (the database's lower() changes A to Z only on SQLite).
        return _scanned(Lead.email_key.contains(email_key(text), autoescape=True))
    if _PHONE.fullmatch(text) and sum(ch.isdigit() for ch in text) >= 5:
        return _phone_condition(text)
    return _scanned(Lead.full_name.icontains(text, autoescape=True))

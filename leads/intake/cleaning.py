"""Pure cleaners for the quote form's values: each returns the value to store or raises Invalid
with a message written for the patient."""

import re
import unicodedata
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from leads.intake.choices import COUNTRY_CODES, LANGUAGE_CODES
from leads.validators import CONTROLS, CONTROLS_BUT_LINES

NAME_MAX = 120
EMAIL_MAX = 254
PHONE_MAX = 40
DETAILS_MAX = 4000
TRACKING_MAX = 100
REFERRER_MAX = 500

PHONE_EXAMPLE = "+45 12 34 56 78"


class Invalid(ValueError):
    """A value the patient has to correct; str(error) is shown next to the field."""


def _without_controls(text: str, *, keep_newlines: bool) -> str:
    """Drop control characters (NUL and friends break databases and terminals); line breaks and
    tabs stay in text that may have several lines (a CR has been made a line break before)."""
    return (CONTROLS_BUT_LINES if keep_newlines else CONTROLS).sub("", text)


def single_line(raw: str | None) -> str:
    """NFC text on one line: any run of whitespace (CR, LF, tabs, wide spaces) becomes one space."""
    text = unicodedata.normalize("NFC", raw or "")
    text = " ".join(text.split())
    return _without_controls(text, keep_newlines=False)


def clean_name(raw: str | None) -> str:
    name = single_line(raw)
    if not name:
        raise Invalid(_l("Enter your full name"))
    if len(name) > NAME_MAX:
        raise Invalid(
            _l(
                "Your name is too long: use at most %(max)d characters (it has %(length)d)",
                max=NAME_MAX,
                length=len(name),
            )
        )
    if not any(unicodedata.category(c).startswith("L") for c in name):
        raise Invalid(_l("Enter your name in letters"))
    return name


def clean_email(raw: str | None) -> str:
    text = single_line(raw)
    if not text:
        raise Invalid(_l("Enter your email address, so that we can send you your reference"))
    if len(text) > EMAIL_MAX:
        raise Invalid(_l("That email address is too long: use at most %(max)d characters", max=EMAIL_MAX))
    if "@" not in text:
        raise Invalid(_l("Enter an email address with an @ in it, for example name@example.com"))
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise Invalid(
            _l("Enter an email address in the right format, for example name@example.com")
        ) from None


def clean_phone(raw: str | None, country: str | None) -> str:
    """The number in E.164 (+4512345678); the country helps read a number given without +."""
    text = single_line(raw)
    if not text:
        raise Invalid(
            _l("Enter a phone number with its country code, for example %(example)s", example=PHONE_EXAMPLE)
        )
    if len(text) > PHONE_MAX:
        raise Invalid(
            _l(
                "That phone number is too long. Enter it with its country code, for example %(example)s",
                example=PHONE_EXAMPLE,
            )
        )
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and not country:
        raise Invalid(
            _l("Enter a phone number with its country code, for example %(example)s", example=PHONE_EXAMPLE)
        )
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else country)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise Invalid(
                _l(
                    "We do not recognise that country code. Start with + and the code, "
                    "for example %(example)s",
                    example=PHONE_EXAMPLE,
                )
            ) from None
        raise Invalid(
            _l(
                "Enter a phone number using digits, with its country code, for example %(example)s",
                example=PHONE_EXAMPLE,
            )
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid(
            _l(
                "That phone number does not look complete. Check it and its country code, "
                "for example %(example)s",
                example=PHONE_EXAMPLE,
            )
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_country(raw: str | None) -> str:
    code = single_line(raw).upper()
    if code not in COUNTRY_CODES:
        raise Invalid(_l("Choose the country you live in from the list"))
    return code


def clean_language(raw: str | None) -> str:
    code = single_line(raw).lower()
    if code not in LANGUAGE_CODES:
        raise Invalid(_l("Choose the language you would like us to use from the list"))
    return code


def clean_choice(raw: str | None, choices: tuple[tuple[str, str], ...], message: str) -> str:
    value = single_line(raw)
    if value not in dict(choices):
        raise Invalid(message)
    return value


def clean_details(raw: str | None) -> str:
    """Free text kept as written (HTML is stored as text and escaped wherever it is shown)."""
    text = unicodedata.normalize("NFC", (raw or "").replace("\r\n", "\n").replace("\r", "\n"))
    text = _without_controls(text, keep_newlines=True).strip()
    if len(text) > DETAILS_MAX:
        raise Invalid(
            _l(
                "Please shorten this to %(max)d characters or fewer (it has %(length)d)",
                max=DETAILS_MAX,
                length=len(text),
            )
        )
    return text


def clean_tracking(raw: str | None) -> str | None:
    """A UTM value: one line, cut to its column size. Never an error for the patient."""
    text = single_line(raw)[:TRACKING_MAX]
    return text or None


def clean_referrer(raw: str | None) -> str | None:
    """An http(s) address the patient came from, or None."""
    text = single_line(raw)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return text[:REFERRER_MAX]


_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")


def clean_slug(raw: str | None) -> str | None:
    """A taxonomy slug from a form or a link, or None when it cannot be one."""
    text = single_line(raw).lower()
    return text if _SLUG.fullmatch(text) else None

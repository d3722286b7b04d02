"""Validation of provider data, shared by the admin form and the CSV import: every problem found,
by field, in words an admin can act on."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

import pycountry
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload

from leads.extensions import db
from leads.models import Condition, EvidenceStatus, Treatment
from leads.timeutil import utcnow
from leads.validators import CONTROLS_MESSAGE, has_control_characters
from leads.workdays import DANISH_TIME, danish_date

REGIONS = ("Hovedstaden", "Sjælland", "Syddanmark", "Midtjylland", "Nordjylland")
# Provider emails are written in every language the patient pages have (leads.i18n.LANGUAGES).
NOTIFICATION_LANGUAGES = {
    "en": _l("English"),
    "da": _l("Danish"),
    "de": _l("German"),
    "sv": _l("Swedish"),
    "nb": _l("Norwegian Bokmål"),
    "ar": _l("Arabic"),
}
MAX_CAPACITY = 1000
MAX_ADDRESSES = 10
ACTIVE, PAUSED = "active", "paused"
# For any directory or taxonomy text holding one (PostgreSQL refuses NUL; nobody types the others).


@dataclass
class ProviderData:
    """A provider as typed into the admin form or a CSV row, before validation."""

    name: str = ""
    city: str = ""
    region: str = ""
    notification_emails: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    notification_language: str = "en"
    weekly_capacity: str = ""
    # treatment slug -> evidence status it is offered under ("" = the treatment's own)
    treatments: dict[str, str] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)
    # None: leave the pause state as it is (the form pauses on its own page)
    status: str | None = None
    paused_until: str = ""


@dataclass
class CleanProvider:
    name: str
    city: str
    region: str
    notification_emails: list[str]
    languages: list[str]
    notification_language: str
    weekly_capacity: int
    treatments: list[tuple[Treatment, str]]
    conditions: list[Condition]
    # (active, paused_until) or None to leave as is
    pause: tuple[bool, datetime | None] | None


@dataclass
class SlugIndex:
    """Every treatment and condition row by slug (active or not), loaded once per form or import to
    check a provider's lists; the form's offer is `leads.intake.taxonomy.Taxonomy`."""

    treatments: dict[str, Treatment]
    conditions: dict[str, Condition]

    @classmethod
    def load(cls) -> "SlugIndex":
        treatments = db.session.scalars(
            sa.select(Treatment).options(selectinload(Treatment.conditions)).order_by(Treatment.sort_order)
        ).all()
        conditions = db.session.scalars(sa.select(Condition).order_by(Condition.sort_order)).all()
        return cls({t.slug: t for t in treatments}, {c.slug: c for c in conditions})


class InvalidFields(ValueError):
    """Field name -> message, fit to show next to the field or after a CSV line number.

    Raised for providers and for taxonomy entries alike."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors


def clean_provider(data: ProviderData, taxonomy: SlugIndex, *, today: date | None = None) -> CleanProvider:
    """Validate and normalise `data`; InvalidFields with every problem found."""
    errors: dict[str, str] = {}
    name = _text(data.name, "name", _("Enter the provider's name"), 200, errors)
    city = _text(data.city, "city", _("Enter the city"), 100, errors)
    region = _region(data.region, errors)
    emails = _emails(data.notification_emails, errors)
    languages = _languages(data.languages, errors)
    notification_language = (data.notification_language or "").strip().lower()
    if notification_language not in NOTIFICATION_LANGUAGES:
        errors["notification_language"] = _(
            "Choose the language of the notification emails: %(codes)s.",
            codes=", ".join(NOTIFICATION_LANGUAGES),
        )
    capacity = _capacity(data.weekly_capacity, errors)
    treatments = _treatments(data.treatments, taxonomy, errors)
    conditions = _conditions(data.conditions, taxonomy, treatments, errors)
    pause = _pause(data.status, data.paused_until, today or danish_date(utcnow()), errors)
    if errors:
        raise InvalidFields(errors)
    return CleanProvider(
        name=name,
        city=city,
        region=region,
        notification_emails=emails,
        languages=languages,
        notification_language=notification_language,
        weekly_capacity=capacity,
        treatments=treatments,
        conditions=conditions,
        pause=pause,
    )


def _text(value: str, name: str, missing: str, limit: int, errors: dict) -> str:
    value = " ".join((value or "").split())
    if has_control_characters(value):
        errors[name] = str(CONTROLS_MESSAGE)
    elif not value:
        errors[name] = missing
    elif len(value) > limit:
        errors[name] = _(
            "Use at most %(limit)d characters (this has %(length)d)", limit=limit, length=len(value)
        )
    return value


def _region(value: str, errors: dict) -> str:
    wanted = " ".join((value or "").split()).casefold().removeprefix("region ").replace("ae", "æ")
    for region in REGIONS:
        if region.casefold() == wanted:
            return region
    if not wanted:
        errors["region"] = _("Choose the region")
    else:
        errors["region"] = _(
            "'%(region)s' is not a Danish region; use one of: %(regions)s",
            region=value.strip(),
            regions=", ".join(REGIONS),
        )
    return ""


def _emails(values: list[str], errors: dict) -> list[str]:
    addresses, problems = [], []
    for raw in values:
        raw = raw.strip()
        if not raw:
            continue
        try:
            address = validate_email(raw, check_deliverability=False).normalized
        except EmailNotValidError:
            problems.append(raw)
            continue
        if address.lower() not in {a.lower() for a in addresses}:
            addresses.append(address)
    if problems:
        errors["notification_emails"] = _(
            "Not a valid email address: %(addresses)s. Use the form name@clinic.dk",
            addresses=", ".join(problems),
        )
    elif not addresses:
        errors["notification_emails"] = _("Enter at least one email address for lead notifications")
    elif len(addresses) > MAX_ADDRESSES:
        errors["notification_emails"] = _("Enter at most %(count)d addresses", count=MAX_ADDRESSES)
    return addresses


def _languages(values: list[str], errors: dict) -> list[str]:
    codes, unknown = [], []
    for raw in values:
        code = raw.strip().lower()
        if not code:
            continue
        if len(code) != 2 or pycountry.languages.get(alpha_2=code) is None:
            unknown.append(raw.strip())
        elif code not in codes:
            codes.append(code)
    if unknown:
        errors["languages"] = _(
            "Not a two-letter ISO 639-1 language code: %(codes)s. For example da, en, de",
            codes=", ".join(unknown),
        )
    elif not codes:
        errors["languages"] = _("Enter at least one language the provider's staff speak, for example da, en")
    return codes


def _capacity(value, errors: dict) -> int:
    text = str(value if value is not None else "").strip()
    if not re.fullmatch(r"\d{1,6}", text) or not 1 <= int(text) <= MAX_CAPACITY:
        errors["weekly_capacity"] = _(
            "Enter how many leads a week the provider takes, a whole number from 1 to %(max)d "
            "(to stop leads for a while, pause the provider)",
            max=MAX_CAPACITY,
        )
        return 0
    return int(text)


def _treatments(values: dict[str, str], taxonomy: SlugIndex, errors: dict) -> list[tuple[Treatment, str]]:
    chosen, unknown, bad_status = [], [], []
    allowed = {s.value for s in EvidenceStatus}
    for slug, status in values.items():
        slug, status = slug.strip().lower(), (status or "").strip().lower().replace(" ", "_")
        treatment = taxonomy.treatments.get(slug)
        if treatment is None:
            unknown.append(slug)
        elif status and status not in allowed:
            bad_status.append(f"{slug}:{status}")
        else:
            chosen.append((treatment, status or treatment.evidence_status))
    if unknown and taxonomy.treatments:
        errors["treatments"] = _(
            "Unknown treatment %(slugs)s; known treatments: %(known)s",
            slugs=_quoted(unknown),
            known=", ".join(sorted(taxonomy.treatments)),
        )
    elif unknown:
        errors["treatments"] = _(
            "Unknown treatment %(slugs)s; there are no treatments yet", slugs=_quoted(unknown)
        )
    elif bad_status:
        errors["treatments"] = _(
            "Unknown evidence status in %(items)s; use approved, clinical_trial or investigational",
            items=", ".join(bad_status),
        )
    elif not chosen:
        errors["treatments"] = _("Choose at least one treatment the provider offers")
    return chosen


def _quoted(slugs: list[str]) -> str:
    return ", ".join(repr(slug) for slug in slugs)


def _conditions(
    slugs: list[str], taxonomy: SlugIndex, treatments: list[tuple[Treatment, str]], errors: dict
) -> list[Condition]:
    chosen, unknown = [], []
    for slug in slugs:
        slug = slug.strip().lower()
        if not slug:
            continue
        condition = taxonomy.conditions.get(slug)
        if condition is None:
            unknown.append(slug)
        elif condition not in chosen:
            chosen.append(condition)
    if unknown and taxonomy.conditions:
        errors["conditions"] = _(
            "Unknown condition %(slugs)s; known conditions: %(known)s",
            slugs=_quoted(unknown),
            known=", ".join(sorted(taxonomy.conditions)),
        )
    elif unknown:
        errors["conditions"] = _(
            "Unknown condition %(slugs)s; there are no conditions yet", slugs=_quoted(unknown)
        )
    elif not chosen:
        errors["conditions"] = _("Choose at least one condition the provider accepts")
    elif treatments:
        covered = {c.id for treatment, _ in treatments for c in treatment.conditions}
        stray = [c.slug for c in chosen if c.id not in covered]
        if stray:
            errors["conditions"] = _(
                "%(slugs)s: not a condition of any treatment the provider offers; "
                "add the treatment or remove the condition",
                slugs=", ".join(stray),
            )
    return chosen


def _pause(status: str | None, until: str, today: date, errors: dict) -> tuple[bool, datetime | None] | None:
    if status is None:
        return None
    status = status.strip().lower() or ACTIVE
    until = (until or "").strip()
    if status not in (ACTIVE, PAUSED):
        errors["status"] = _(
            "Use '%(active)s' or '%(paused)s', not '%(status)s'", active=ACTIVE, paused=PAUSED, status=status
        )
        return None
    if status == ACTIVE:
        if until:
            errors["paused_until"] = _("Leave empty for an active provider, or set the status to 'paused'")
        return (True, None)
    if not until:
        return (False, None)
    try:
        day = date.fromisoformat(until)
    except ValueError:
        errors["paused_until"] = _("'%(value)s' is not a date; use the form 2026-12-31", value=until)
        return None
    if day <= today:
        errors["paused_until"] = _("The date the provider gets leads again must be in the future")
        return None
    return (True, resume_at(day))


def resume_at(day: date) -> datetime:
    """The moment a provider paused until `day` gets leads again: the start of that day in Denmark."""
    return datetime.combine(day, time.min, tzinfo=DANISH_TIME)

"""Template filters for staff pages: times in the reader's zone, durations, percentages, status labels,
why a provider scored what it did, a mail server's words quoted."""

from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent
from flask_login import current_user
from markupsafe import Markup

from leads.i18n import Term, country_name, duration, language_name, page_language
from leads.intake import choices
from leads.models.staff import DEFAULT_TIME_ZONE
from leads.notes import quoted_html
from leads.quotes.rules import INCLUDES
from leads.routing import breakdown
from leads.routing.responses import DECLINE_REASONS
from leads.staff import bp
from leads.staff.labels import label


@bp.app_template_filter("staff_time")
def staff_time(value: datetime | None) -> str:
    """A moment in the signed-in reader's time zone, the zone named (2026-11-28 11:05 CET)."""
    if not value:
        return "—"
    return value.astimezone(reader_zone()).strftime("%Y-%m-%d %H:%M %Z")


def reader_zone() -> ZoneInfo:
    zone = current_user.time_zone if current_user.is_authenticated else None
    return ZoneInfo(zone or DEFAULT_TIME_ZONE)


@bp.app_template_filter("staff_duration")
def staff_duration(seconds: float | None) -> str:
    """A duration in the reader's language, its two largest units (3 dage og 4 t.); a dash for none."""
    return "—" if seconds is None else duration(seconds)


@bp.app_template_filter("staff_percent")
def staff_percent(value: float | None) -> str:
    """A share as the reader's language writes a whole percentage: 42 %, 42%, ٪42."""
    return "—" if value is None else format_percent(value, locale=page_language())


@bp.app_template_filter("staff_decimal")
def staff_decimal(value: float | None) -> str:
    """A figure with one decimal, as the reader's language writes it: 1.5 / 1,5."""
    return "—" if value is None else format_decimal(value, "#,##0.0", locale=page_language())


@bp.app_template_filter("staff_status")
def staff_status(value: str | None) -> str:
    """A lead status in the reader's words."""
    return label(value)


@bp.app_template_filter("staff_label")
def staff_label(value: str | None, kind: str) -> str:
    """A stored code of `kind` (assignment, quote, email, role, event, score) in the reader's words."""
    return label(value, kind)


@bp.app_template_filter("score_why")
def score_why(part: dict) -> str:
    """Why one part of a provider's stored score earned its points, in the reader's words."""
    return breakdown.why(part)


@bp.app_template_filter("quoted")
def quoted(value: str) -> Markup:
    """Words quoted as a mail server gave them, as code, left to right inside the reader's sentence."""
    return quoted_html(value)


@bp.app_template_filter("event_kind")
def event_kind(value: str | None) -> str:
    return label(value, "event")


@bp.app_template_filter("decline_reason")
def decline_reason(value: str | None) -> Term | str:
    """A clinic's reason for declining, in words (`in_sentence` after a colon)."""
    return DECLINE_REASONS.get(value or "") or (value or "").replace("_", " ")


@bp.app_template_filter("quote_include")
def quote_include(value: str) -> Term | str:
    """What a quote includes, in words (for `item_list`, which writes the items after the first
    as a sentence would)."""
    return INCLUDES.get(value) or value.replace("_", " ")


_CHOICES = {
    "timeframe": dict(choices.TIMEFRAMES),
    "budget": dict(choices.BUDGETS),
    "contact_preference": dict(choices.CONTACT_PREFERENCES),
    "evidence": choices.EVIDENCE_LABELS,
}
_NAMES = {
    "country": country_name,
    "language": language_name,
    # Named inside a sentence ("shown in %(language)s"): as the reader's language writes it there.
    "language_in_sentence": partial(language_name, in_sentence=True),
}


@bp.app_template_filter("staff_choice")
def staff_choice(value: str | None, kind: str) -> str:
    """A stored form answer ('3-6-months', 'NO') as the words the patient chose."""
    if not value:
        return "—"
    if kind in _NAMES:
        name = _NAMES[kind](value)
        return f"{name} ({value})" if name != value else value
    return _CHOICES[kind].get(value) or value

"""Why a provider's score is what it is, in the reader's language. The matching engine stores each
part of a score with its details as codes and numbers (`engine.Match.breakdown`, kept in
Assignment.score_breakdown), no words, so that it stays free of Flask and of the catalogs; the
lead page words them here, numbers, percentages and durations as the reader's locale writes them.
A part stored before the engine kept codes holds its English `detail` text, shown as it is."""

from collections.abc import Callable, Mapping
from datetime import timedelta

from flask_babel import format_decimal, format_percent, format_timedelta, gettext
from flask_babel import lazy_gettext as _l

from leads.i18n import language_name
from leads.routing import engine

# How the provider offers the treatment, by the evidence status it offers it under.
OFFERED_AS = {
    engine.APPROVED: _l("offers it as an approved treatment"),
    engine.CLINICAL_TRIAL: _l("offers it within clinical trials"),
    engine.INVESTIGATIONAL: _l("offers it as an investigational treatment"),
}


def _duration(seconds: int, *, ago: bool = False) -> str:
    # To the minute; under a minute reads as one minute (never "in 0 minutes").
    length = timedelta(seconds=max(seconds, 1))
    return format_timedelta(-length if ago else length, granularity="minute", add_direction=ago)


def _evidence(detail: Mapping) -> str | None:
    words = OFFERED_AS.get(detail["evidence"])
    return str(words) if words is not None else None


def _category(detail: Mapping) -> str:
    """The condition category in the reader's words (the taxonomy's names are in the catalogs)."""
    category = detail["category"]
    return gettext(category)


# Each detail code the engine stores, and its words (None: a value this code does not know).
WORDINGS: dict[str, Callable[[Mapping], str | None]] = {
    engine.EVIDENCE: _evidence,
    engine.IN_FIELD: lambda detail: gettext(
        "accepted conditions in %(category)s: %(in_field)s of %(accepted)s",
        category=_category(detail),
        in_field=format_decimal(detail["in_field"]),
        accepted=format_decimal(detail["accepted"]),
    ),
    engine.SPEAKS_LANGUAGE: lambda detail: gettext(
        "speaks the patient's language (%(language)s)",
        language=language_name(detail["language"], in_sentence=True),
    ),
    engine.LACKS_LANGUAGE: lambda detail: gettext(
        "does not speak the patient's language (%(language)s)",
        language=language_name(detail["language"], in_sentence=True),
    ),
    engine.ANSWERED: lambda detail: gettext(
        "leads answered: %(answered)s of %(leads)s (%(share)s)",
        answered=format_decimal(detail["answered"]),
        leads=format_decimal(detail["leads"]),
        share=format_percent(detail["answered"] / detail["leads"]),
    ),
    engine.NO_ANSWERS_YET: lambda detail: gettext("no answers yet: counted as average"),
    engine.MEDIAN_ANSWER: lambda detail: gettext(
        "median time to answer: %(duration)s", duration=_duration(detail["seconds"])
    ),
    engine.WEEK_LOAD: lambda detail: gettext(
        "leads this week: %(assigned)s of %(capacity)s",
        assigned=format_decimal(detail["assigned"]),
        capacity=format_decimal(detail["capacity"]),
    ),
    engine.LAST_LEAD: lambda detail: gettext("last lead %(ago)s", ago=_duration(detail["seconds"], ago=True)),
    engine.NEVER_ASSIGNED: lambda detail: gettext("never assigned before"),
}


def word(detail: Mapping) -> str:
    """One stored detail in the reader's language; one this code does not know as its values."""
    wording = WORDINGS.get(detail.get("code"))
    words = wording(detail) if wording is not None else None
    if words is None:
        return " ".join(str(value) for value in detail.values()).replace("_", " ")
    return words


def why(part: Mapping) -> str:
    """Why one part of a stored score earned its points, in the reader's language; a part stored
    before the engine kept codes, as its English text."""
    if "details" not in part:
        return str(part.get("detail", ""))
    return "; ".join(word(detail) for detail in part["details"])

"""What a provider's notification email may say: the least data that lets them decide to open
the link. Never contact details, never the patient's free text (health data stays behind the link)."""

import gettext
from functools import cache

import pycountry
from flask import current_app

from leads.intake.choices import BUDGETS, TIMEFRAMES
from leads.messaging.email import PROVIDER_TEMPLATE_PREFIX, queue_email
from leads.messaging.urls import provider_link
from leads.models import Assignment, Lead, Provider

DANISH = "da"
# The quote form's answer labels in Danish, for providers who get their emails in Danish.
DANISH_LABELS = {
    "timeframe": {
        "as-soon-as-possible": "Så hurtigt som muligt",
        "1-3-months": "Inden for 1 til 3 måneder",
        "3-6-months": "Om 3 til 6 måneder",
        "6-12-months": "Om 6 til 12 måneder",
        "not-sure": "Ved ikke endnu",
    },
    "budget": {
        "under-10000-eur": "Under 10.000 €",
        "10000-20000-eur": "10.000 til 20.000 €",
        "20000-50000-eur": "20.000 til 50.000 €",
        "over-50000-eur": "Over 50.000 €",
        "not-sure": "Ved ikke endnu",
    },
}
ENGLISH_LABELS = {"timeframe": dict(TIMEFRAMES), "budget": dict(BUDGETS)}


def queue_provider_emails(assignment: Assignment, kind: str, **extra) -> None:
    """One `provider_<kind>` email (notification, reminder) per notification address of the
    assignment's provider, in its language, Reply-To the coordinators; once per address."""
    provider, lead = assignment.provider, assignment.lead
    context = notification_context(lead, provider, provider_link(assignment.id))
    template = f"{PROVIDER_TEMPLATE_PREFIX}{kind}" + ("_da" if context["lang"] == DANISH else "")
    for address in provider.notification_emails:
        queue_email(
            template=template,
            to=address,
            lead_id=lead.id,
            idempotency_key=f"{KEY_PREFIXES[kind]}:{assignment.id}:{address}",
            reply_to=current_app.config["COORDINATOR_EMAIL"],
            **context,
            **extra,
        )


# Idempotency keys of provider emails: one per assignment, kind and address.
KEY_PREFIXES = {"notification": "assign", "reminder": "reminder"}


def notification_key_prefix(assignment_id: int) -> str:
    """What the keys of an assignment's notification emails (one per address) start with."""
    return f"{KEY_PREFIXES['notification']}:{assignment_id}:"


def notified_assignment_id(idempotency_key: str) -> int | None:
    """The assignment a notification email told its provider about, from the email's key."""
    prefix, _, rest = idempotency_key.partition(":")
    assignment_id = rest.partition(":")[0]
    if prefix != KEY_PREFIXES["notification"] or not assignment_id.isdigit():
        return None
    return int(assignment_id)


def notification_context(lead: Lead, provider: Provider, link: str) -> dict:
    """The template context; every value is safe to send by email."""
    lang = DANISH if provider.notification_language == DANISH else "en"
    return {
        "lang": lang,
        "provider_name": provider.name,
        "reference": lead.reference,
        "treatment_name": lead.treatment.name,
        "condition_category": lead.condition.category,
        "country_name": country_name(lead.country, lang),
        "language_name": language_name(lead.preferred_language, lang),
        "timeframe": answer_label("timeframe", lead.timeframe, lang),
        "budget": answer_label("budget", lead.budget, lang),
        "link": link,
        "link_days": current_app.config["PROVIDER_LINK_MAX_AGE_DAYS"],
    }


def country_name(alpha_2: str | None, lang: str = "en") -> str:
    country = pycountry.countries.get(alpha_2=(alpha_2 or "").upper()) if alpha_2 else None
    if country is None:
        return alpha_2 or "not given"
    return _translate("iso3166-1", lang, getattr(country, "common_name", None) or country.name)


def language_name(code: str | None, lang: str = "en") -> str:
    primary = (code or "").lower().replace("_", "-").split("-")[0]
    language = pycountry.languages.get(alpha_2=primary) if len(primary) == 2 else None
    if language is None:
        return code or "not given"
    return _translate("iso639-3", lang, language.name)


def answer_label(question: str, value: str | None, lang: str = "en") -> str:
    """The words the patient chose on the form, in the email's language."""
    labels = DANISH_LABELS if lang == DANISH else ENGLISH_LABELS
    return labels[question].get(value or "") or ENGLISH_LABELS[question].get(value or "") or humanise(value)


def humanise(value: str | None) -> str:
    """A stored choice such as '3-6-months' or '20000-50000-eur' as readable text."""
    if not value:
        return "not given"
    words = value.replace("_", " ").split("-")
    text = ""
    for word in words:
        # Keep number ranges together ("3-6 months"), separate words with spaces.
        joiner = "-" if text and text[-1].isdigit() and word[:1].isdigit() else " "
        text = f"{text}{joiner}{word}" if text else word
    return text.replace(" eur", " EUR").replace(" dkk", " DKK")


def _translate(domain: str, lang: str, text: str) -> str:
    if lang == "en":
        return text
    return _catalogue(domain, lang).gettext(text)


@cache
def _catalogue(domain: str, lang: str) -> gettext.NullTranslations:
    return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[lang], fallback=True)

"""What a provider's notification email may say: the least data that lets them decide to open
the link. Never contact details, never the patient's free text (health data stays behind the link)."""

from flask import current_app
from flask_babel import force_locale, gettext

from leads.i18n import country_name, language_name, patient_language
from leads.intake.choices import BUDGETS, TIMEFRAMES, label_for
from leads.messaging.email import queue_email
from leads.messaging.provider_keys import KEY_PREFIXES, PROVIDER_TEMPLATE_PREFIX
from leads.messaging.urls import provider_link
from leads.models import Assignment, Lead, Provider


def queue_provider_emails(assignment: Assignment, kind: str, **extra) -> None:
    """The notification or reminder about the assignment's lead: what it may say about the lead
    (`notification_context`), to each notification address of its provider.

    A notification is queued by the routing that made the assignment, which holds the locks of
    the lead and of every candidate provider until it commits: it is rendered by the worker that
    sends it, and its key (a new assignment's) is not looked up.
    """
    context = notification_context(assignment.lead, assignment.provider, provider_link(assignment.id))
    template = f"{PROVIDER_TEMPLATE_PREFIX}{kind}"
    new = kind == "notification"
    key = f"{KEY_PREFIXES[kind]}:{assignment.id}"
    email_provider(assignment, template, key, render_later=new, new_key=new, **context, **extra)


def email_provider(
    assignment: Assignment,
    template: str,
    key: str,
    *,
    render_later: bool = False,
    new_key: bool = False,
    **context,
) -> None:
    """One email per notification address of the assignment's provider, in its language, Reply-To
    the coordinators; once per `key` and address. A `provider_` template is about the lead and is
    cancelled if the lead stops being shareable before it goes; a `notice_provider_` one is not.
    `render_later` and `new_key`: as `queue_email` takes them."""
    provider = assignment.provider
    language = provider_language(provider)
    for address in provider.notification_emails:
        queue_email(
            template=template,
            to=address,
            lead_id=assignment.lead_id,
            idempotency_key=f"{key}:{address}",
            reply_to=current_app.config["COORDINATOR_EMAIL"],
            language=language,
            render_later=render_later,
            new_key=new_key,
            **context,
        )


def provider_language(provider: Provider) -> str:
    """The language a clinic reads our emails in (its notification language, else English)."""
    return patient_language(provider.notification_language)


def notification_context(lead: Lead, provider: Provider, link: str) -> dict:
    """The template context in the provider's language; every value is safe to send by email."""
    language = provider_language(provider)
    with force_locale(language):
        return {
            "provider_name": provider.name,
            "reference": lead.reference,
            "treatment_name": gettext(lead.treatment.name),
            "condition_category": gettext(lead.condition.category),
            "country_name": country_name(lead.country, language) if lead.country else gettext("not given"),
            "language_name": language_name(lead.preferred_language, language)
            if lead.preferred_language
            else gettext("not given"),
            "timeframe": str(label_for(TIMEFRAMES, lead.timeframe)) or gettext("not given"),
            "budget": str(label_for(BUDGETS, lead.budget)) or gettext("not given"),
            "link": link,
            "link_days": current_app.config["PROVIDER_LINK_MAX_AGE_DAYS"],
        }

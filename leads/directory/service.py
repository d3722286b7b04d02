"""The provider directory's records: saving validated providers, pausing and reactivating them,
and what the directory pages list."""

from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import format_date, gettext
from sqlalchemy.orm import selectinload

from leads.directory.validation import CleanProvider, InvalidFields, resume_at
from leads.extensions import db, flush_unless_taken
from leads.models import Assignment, Provider, ProviderTreatment
from leads.models.catalog import provider_name_key
from leads.timeutil import utcnow
from leads.workdays import DANISH_TIME, week_start
from leads.workflow import provider_paused


def find_by_name(name: str) -> Provider | None:
    """The provider of that name in any case (`provider_name_key`), through its unique index."""
    return db.session.scalar(sa.select(Provider).filter_by(name_key=provider_name_key(name)))


def _name_taken(name: str, provider: Provider | None) -> InvalidFields | None:
    """The error for a name that another provider than `provider` has, in any case; else None."""
    other = find_by_name(name)
    if other is not None and other is not provider:
        return InvalidFields(
            {"name": gettext("Another provider is already called '%(name)s'", name=other.name)}
        )
    return None


def save_provider(provider: Provider | None, clean: CleanProvider) -> Provider:
    """Create (provider None) or update a provider from validated data, flushed; InvalidFields if
    the name belongs to another provider, also one saved since the check (the unique key tells)."""
    editing = provider
    if (taken := _name_taken(clean.name, editing)) is not None:
        raise taken
    if provider is None:
        provider = Provider(name=clean.name)
        db.session.add(provider)
    provider.name = clean.name
    provider.city, provider.region = clean.city, clean.region
    provider.notification_emails = list(clean.notification_emails)
    provider.languages = list(clean.languages)
    provider.notification_language = clean.notification_language
    provider.weekly_capacity = clean.weekly_capacity
    offered = {pt.treatment_id: pt for pt in provider.treatments}
    wanted = {treatment.id: (treatment, status) for treatment, status in clean.treatments}
    for treatment_id, link in list(offered.items()):
        if treatment_id not in wanted:
            provider.treatments.remove(link)
    for treatment_id, (treatment, status) in wanted.items():
        if treatment_id in offered:
            offered[treatment_id].evidence_status = status
        else:
            provider.treatments.append(ProviderTreatment(treatment=treatment, evidence_status=status))
    provider.conditions = list(clean.conditions)
    if clean.pause is not None:
        provider.active, provider.paused_until = clean.pause
    flush_unless_taken(lambda: _name_taken(clean.name, editing))
    return provider


def pause_provider(provider: Provider, until: date | None) -> None:
    """Stop new leads: until the start of `until` in Denmark, or until reactivated."""
    if until is None:
        provider.active, provider.paused_until = False, None
    else:
        provider.active, provider.paused_until = True, resume_at(until)


def reactivate_provider(provider: Provider) -> None:
    provider.active, provider.paused_until = True, None


def is_paused(provider: Provider, now: datetime | None = None) -> bool:
    return provider_paused(provider.active, provider.paused_until, now or utcnow())


def status_label(provider: Provider, now: datetime | None = None) -> str:
    """'Active', 'Paused' or 'Paused until 3 Dec 2026' for the directory pages."""
    now = now or utcnow()
    if not provider.active:
        return gettext("Paused")
    if is_paused(provider, now):
        day = provider.paused_until.astimezone(DANISH_TIME)
        return gettext("Paused until %(date)s", date=format_date(day.date(), "d MMM y"))
    return gettext("Active")


def weekly_load() -> dict[int, int]:
    """Provider id -> leads assigned since Monday (the number weekly capacity is checked against)."""
    rows = db.session.execute(
        sa.select(Assignment.provider_id, sa.func.count(Assignment.id))
        .where(Assignment.created_at >= week_start(utcnow()))
        .group_by(Assignment.provider_id)
    )
    return {provider_id: count for provider_id, count in rows}


def list_providers() -> list[Provider]:
    return list(
        db.session.scalars(
            sa.select(Provider)
            .options(selectinload(Provider.treatments).selectinload(ProviderTreatment.treatment))
            .options(selectinload(Provider.conditions))
            .order_by(sa.func.lower(Provider.name))
        )
    )

"""What routing decides on, read from the database: the candidate providers (locked), this
week's load, answer history, and the providers a patient already had."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from leads.extensions import db
from leads.models import Assignment, Lead, Provider, ProviderTreatment, same_patient
from leads.routing import engine
from leads.workdays import week_start


def offering(treatment_id: int):
    """The ids of the providers offering the treatment (a subquery)."""
    return sa.select(ProviderTreatment.provider_id).where(ProviderTreatment.treatment_id == treatment_id)


def lock_candidates(treatment_id: int) -> list[Provider]:
    """Every provider offering the treatment, locked until the transaction ends."""
    # Every provider offering the treatment, locked in id order so two routings never deadlock.
    # NO KEY UPDATE: rows referencing a provider can still be inserted meanwhile.
    return list(
        db.session.scalars(
            sa.select(Provider)
            .where(Provider.id.in_(offering(treatment_id)))
            .order_by(Provider.id)
            .with_for_update(key_share=True)
            .options(selectinload(Provider.treatments), selectinload(Provider.conditions))
            .execution_options(populate_existing=True)
        )
    )


def lead_profile(lead: Lead) -> engine.LeadProfile:
    """The lead as the engine sees it: no contact details, no free text."""
    return engine.LeadProfile(
        treatment_id=lead.treatment_id,
        condition_id=lead.condition_id,
        condition_category=lead.condition.category,
        language=language_code(lead.preferred_language),
        excluded_provider_ids=frozenset(providers_already_tried(lead)),
    )


def providers_already_tried(lead: Lead) -> set[int]:
    """Providers that had this patient: on this lead, its duplicates, or any lead with the same
    email address or phone number."""
    linked = [Lead.id == lead.id, Lead.duplicate_of_id == lead.id]
    if lead.duplicate_of_id is not None:
        linked.append(Lead.id == lead.duplicate_of_id)
    return set(
        db.session.scalars(
            sa.select(Assignment.provider_id)
            .join(Lead, Assignment.lead_id == Lead.id)
            .where(sa.or_(*linked, same_patient(lead.email, lead.phone)))
        )
    )


def provider_profiles(providers: list[Provider], now: datetime) -> list[engine.ProviderProfile]:
    """The providers with their assignments since this week began counted, and their answer
    statistics as stored on them (`responses.refresh_provider_stats`): routing reads no history.
    """
    # Weekly capacity counts leads from Monday 00:00 in Denmark, where every provider works.
    this_week = _assigned_since([p.id for p in providers], week_start(now))
    return [
        engine.ProviderProfile(
            id=p.id,
            name=p.name,
            active=p.active,
            paused_until=p.paused_until,
            has_notification_address=bool(p.notification_emails),
            treatments={pt.treatment_id: pt.evidence_status for pt in p.treatments},
            conditions={c.id: c.category for c in p.conditions},
            languages=frozenset(language_code(code) for code in p.languages or ()),
            weekly_capacity=p.weekly_capacity,
            assigned_this_week=this_week.get(p.id, 0),
            response_count=p.response_count or 0,
            unanswered_count=p.unanswered_count or 0,
            median_response_seconds=p.median_response_seconds,
            last_assigned_at=p.last_assigned_at,
        )
        for p in providers
    ]


def _assigned_since(provider_ids: list[int], since: datetime) -> dict[int, int]:
    """How many assignments each provider got since `since`: one query, answered from the
    (provider, created) index alone where the table's visibility map allows."""
    if not provider_ids:
        return {}
    rows = db.session.execute(
        sa.select(Assignment.provider_id, sa.func.count())
        .where(Assignment.provider_id.in_(provider_ids), Assignment.created_at >= since)
        .group_by(Assignment.provider_id)
    )
    return {provider_id: count for provider_id, count in rows}


def language_code(code: str | None) -> str:
    return (code or "").strip().lower().replace("_", "-").split("-")[0]

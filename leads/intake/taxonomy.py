"""The treatments and conditions the form offers, as plain data (only active entries), kept in
each process for up to TAXONOMY_CACHE_SECONDS."""

import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_babel import gettext
from sqlalchemy.orm import Session, selectinload

from leads.extensions import db, look_ups_first
from leads.models import Condition, Treatment

_CACHE = "taxonomy_cache"
_CHANGED = "taxonomy_changed"


@dataclass(frozen=True)
class ConditionOption:
    slug: str
    name: str
    category: str


@dataclass(frozen=True)
class TreatmentOption:
    slug: str
    name: str
    description: str
    evidence_status: str
    condition_slugs: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    treatments: tuple[TreatmentOption, ...]
    conditions: tuple[ConditionOption, ...]  # those of at least one offered treatment

    def treatment(self, slug: str | None) -> TreatmentOption | None:
        return next((t for t in self.treatments if t.slug == slug), None)

    def condition(self, slug: str | None) -> ConditionOption | None:
        return next((c for c in self.conditions if c.slug == slug), None)

    def treatments_for(self, condition_slug: str) -> tuple[str, ...]:
        return tuple(t.slug for t in self.treatments if condition_slug in t.condition_slugs)

    def conditions_by_category(self) -> list[tuple[str, list[ConditionOption]]]:
        groups: dict[str, list[ConditionOption]] = {}
        for condition in self.conditions:
            groups.setdefault(condition.category, []).append(condition)
        return list(groups.items())


def condition_problem(
    taxonomy: Taxonomy, treatment_slug: str | None, condition_slug: str | None
) -> str | None:
    """Why this condition cannot be asked about with this treatment, or None."""
    condition = taxonomy.condition(condition_slug)
    if condition is None:
        return gettext("Choose the condition the treatment is for from the list")
    treatment = taxonomy.treatment(treatment_slug)
    if treatment is not None and condition.slug not in treatment.condition_slugs:
        return gettext(
            "%(treatment)s is not offered for this condition (%(condition)s). Choose one of the "
            "conditions listed for it, or choose another treatment",
            treatment=gettext(treatment.name),
            condition=gettext(condition.name),
        )
    return None


def load_taxonomy() -> Taxonomy:
    """Active treatments in their order, each with its active conditions."""
    treatments = db.session.scalars(
        sa.select(Treatment)
        .where(Treatment.active.is_(True))
        .options(selectinload(Treatment.conditions))
        .order_by(Treatment.sort_order, Treatment.name)
    ).all()
    options, conditions = [], {}
    for treatment in treatments:
        active = [c for c in treatment.conditions if c.active]
        for condition in active:
            conditions.setdefault(condition.slug, condition)
        if active:  # a treatment with nothing to ask about is not offered
            options.append(
                TreatmentOption(
                    slug=treatment.slug,
                    name=treatment.name,
                    description=treatment.description or "",
                    evidence_status=treatment.evidence_status,
                    condition_slugs=tuple(c.slug for c in active),
                )
            )
    ordered = sorted(conditions.values(), key=lambda c: (c.sort_order, c.name))
    return Taxonomy(
        treatments=tuple(options),
        conditions=tuple(ConditionOption(c.slug, c.name, c.category) for c in ordered),
    )


def offered_taxonomy() -> Taxonomy:
    """The form's taxonomy from this process's cache, read again once TAXONOMY_CACHE_SECONDS old.

    A commit that changes a treatment or condition empties the cache of the process that made it
    at once; other processes see the change within TAXONOMY_CACHE_SECONDS. Meanwhile a request for
    a treatment or condition no longer offered is refused at submission, which reads the database.
    Called at the start of a request, before it reads or writes anything else.
    """
    cache = current_app.extensions.setdefault(_CACHE, {})
    entry = cache.get("taxonomy")
    now = time.monotonic()
    if entry is None or now - entry[0] >= current_app.config["TAXONOMY_CACHE_SECONDS"]:
        with look_ups_first():  # at the start of the form's request: no write lock for reading it
            entry = cache["taxonomy"] = (now, load_taxonomy())
    return entry[1]


def forget_taxonomy() -> None:
    """Empty this process's cache: the next form reads the taxonomy from the database."""
    current_app.extensions.get(_CACHE, {}).clear()


def _note_taxonomy_changes(session: Session, flush_context) -> None:
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, (Treatment, Condition)) for obj in touched):
        session.info[_CHANGED] = True


def _forget_after_commit_or_rollback(session: Session, *args) -> None:
    if session.info.pop(_CHANGED, False) and has_app_context():
        forget_taxonomy()


def register_taxonomy_cache() -> None:
    """Empty the cache whenever a transaction that changed the taxonomy ends (commit or rollback)."""
    if not sa.event.contains(Session, "after_flush", _note_taxonomy_changes):
        sa.event.listen(Session, "after_flush", _note_taxonomy_changes)
        sa.event.listen(Session, "after_commit", _forget_after_commit_or_rollback)
        sa.event.listen(Session, "after_soft_rollback", _forget_after_commit_or_rollback)

"""Editing the treatment and condition taxonomy. Slugs are public (quote links, CSV files), so
they are fixed once created; everything else can change."""

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload

from leads.directory.validation import InvalidFields
from leads.extensions import db
from leads.models import Condition, EvidenceStatus, Treatment

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_RULE = _l("Use lower-case letters, digits and single hyphens, for example stem-cell-als")


@dataclass
class TreatmentData:
    slug: str
    name: str
    description: str
    evidence_status: str
    requires_review: bool
    active: bool
    conditions: list[str] = field(default_factory=list)


@dataclass
class ConditionData:
    slug: str
    name: str
    category: str
    active: bool


def treatments() -> list[Treatment]:
    return list(
        db.session.scalars(
            sa.select(Treatment)
            .options(selectinload(Treatment.conditions))
            .order_by(Treatment.sort_order, Treatment.id)
        )
    )


def conditions() -> list[Condition]:
    return list(db.session.scalars(sa.select(Condition).order_by(Condition.sort_order, Condition.id)))


def save_treatment(treatment: Treatment | None, data: TreatmentData) -> Treatment:
    """Create or update a treatment; InvalidFields on a taken slug, unknown status or condition."""
    errors: dict[str, str] = {}
    if treatment is None:
        _check_slug(Treatment, data.slug, errors)
    if data.evidence_status not in {s.value for s in EvidenceStatus}:
        errors["evidence_status"] = _("Choose approved, clinical trial or investigational")
    by_slug = {c.slug: c for c in conditions()}
    chosen = [by_slug[s] for s in data.conditions if s in by_slug]
    if len(chosen) != len(data.conditions):
        errors["conditions"] = _("Choose conditions from the list")
    elif not chosen:
        errors["conditions"] = _("Choose at least one condition the treatment is for")
    if errors:
        raise InvalidFields(errors)
    if treatment is None:
        last = db.session.scalar(sa.select(sa.func.max(Treatment.sort_order))) or 0
        treatment = Treatment(slug=data.slug, sort_order=last + 1)
        db.session.add(treatment)
    treatment.name = data.name.strip()
    treatment.description = data.description.strip()
    treatment.evidence_status = data.evidence_status
    treatment.requires_review = data.requires_review
    treatment.active = data.active
    treatment.conditions = chosen
    db.session.flush()
    return treatment


def save_condition(condition: Condition | None, data: ConditionData) -> Condition:
    """Create or update a condition; InvalidFields on a taken slug."""
    errors: dict[str, str] = {}
    if condition is None:
        _check_slug(Condition, data.slug, errors)
    if errors:
        raise InvalidFields(errors)
    if condition is None:
        last = db.session.scalar(sa.select(sa.func.max(Condition.sort_order))) or 0
        condition = Condition(slug=data.slug, sort_order=last + 1)
        db.session.add(condition)
    condition.name = data.name.strip()
    condition.category = " ".join(data.category.split())
    condition.active = data.active
    db.session.flush()
    return condition


def _check_slug(model, slug: str, errors: dict) -> None:
    if not SLUG_PATTERN.fullmatch(slug or ""):
        errors["slug"] = str(SLUG_RULE)
    elif db.session.scalar(sa.select(model.id).filter_by(slug=slug)) is not None:
        errors["slug"] = _("'%(slug)s' is already used; choose another", slug=slug)

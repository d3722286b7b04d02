"""All models, importable from one place."""

from leads.models.catalog import (
    AddressBounce,
    Assignment,
    Condition,
    EvidenceStatus,
    Provider,
    ProviderTreatment,
    Treatment,
)
from leads.models.lead import (
    Consent,
    Lead,
    LeadEvent,
    email_key,
    find_by_reference,
    same_email,
    same_patient,
    sla_running,
)
from leads.models.messaging import EmailMessage, EmailStatus, OutboxMessage
from leads.models.quote import Quote, QuoteRevision
from leads.models.staff import AccessAction, AccessLog, ErasureRecord, Role, User, access_detail
from leads.models.stats import StatsDay
from leads.workflow import AssignmentStatus


def schema_objects_of(dialect_name: str):
    """An Alembic `include_object` that leaves out what `.ddl_if(dialect=…)` keeps off this
    database (the PostgreSQL-only trigram indexes on SQLite): Alembic does not read `ddl_if`."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect_name)

    return include


__all__ = [
    "AccessAction",
    "AccessLog",
    "access_detail",
    "AddressBounce",
    "Assignment",
    "AssignmentStatus",
    "Condition",
    "Consent",
    "EmailMessage",
    "EmailStatus",
    "ErasureRecord",
    "EvidenceStatus",
    "Lead",
    "LeadEvent",
    "OutboxMessage",
    "Provider",
    "ProviderTreatment",
    "Quote",
    "QuoteRevision",
    "Role",
    "StatsDay",
    "Treatment",
    "User",
    "email_key",
    "find_by_reference",
    "same_email",
    "same_patient",
    "schema_objects_of",
    "sla_running",
]

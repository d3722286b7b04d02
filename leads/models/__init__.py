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
from leads.models.lead import Consent, Lead, LeadEvent, find_by_reference, same_patient
from leads.models.messaging import EmailMessage, EmailStatus, OutboxMessage
from leads.models.quote import Quote, QuoteRevision
from leads.models.staff import AccessAction, AccessLog, ErasureRecord, Role, User
from leads.models.stats import StatsDay
from leads.workflow import AssignmentStatus

__all__ = [
    "AccessAction",
    "AccessLog",
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
    "find_by_reference",
    "same_patient",
]

"""All models, importable from one place."""

from leads.models.catalog import (
    Assignment,
    Condition,
    EvidenceStatus,
    Provider,
    ProviderTreatment,
    Treatment,
)
from leads.models.lead import Consent, Lead, LeadEvent, same_patient
from leads.models.messaging import EmailMessage, EmailStatus, OutboxMessage
from leads.models.staff import AccessLog, Role, User
from leads.workflow import AssignmentStatus

__all__ = [
    "AccessLog",
    "Assignment",
    "AssignmentStatus",
    "Condition",
    "Consent",
    "EmailMessage",
    "EmailStatus",
    "EvidenceStatus",
    "Lead",
    "LeadEvent",
    "OutboxMessage",
    "Provider",
    "ProviderTreatment",
    "Role",
    "Treatment",
    "User",
    "same_patient",
]

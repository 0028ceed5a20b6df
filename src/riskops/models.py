"""Every table, imported in one place so that Alembic and the app see the same metadata."""

from sqlmodel import SQLModel

from riskops.apikeys.models import ApiKey
from riskops.audit.models import AuditEntry
from riskops.idempotency import IdempotentRequest
from riskops.incidents.models import (
    Incident,
    IncidentMessage,
    IncidentRisk,
    IncidentRole,
    IncidentStep,
    TimelineEntry,
)
from riskops.matrices.models import RiskMatrix
from riskops.playbooks.models import PlaybookVersion
from riskops.risks.models import Risk, RiskAssessment, RiskControl, RiskTag

metadata = SQLModel.metadata

__all__ = [
    "ApiKey", "AuditEntry", "IdempotentRequest", "Incident", "IncidentMessage", "IncidentRisk", "IncidentRole",
    "IncidentStep", "PlaybookVersion", "Risk", "RiskAssessment", "RiskControl", "RiskMatrix", "RiskTag",
    "TimelineEntry", "metadata",
]  # fmt: skip

"""Every table, imported in one place so that Alembic and the app see the same metadata."""

from sqlmodel import SQLModel

from riskops.apikeys.models import ApiKey
from riskops.audit.models import AuditEntry
from riskops.escalations.models import EscalationPolicy
from riskops.events.models import Event
from riskops.idempotency import IdempotentRequest
from riskops.incidents.models import (
    Incident,
    IncidentMessage,
    IncidentRisk,
    IncidentRole,
    IncidentStep,
    TimelineEntry,
)
from riskops.integrations.models import AlertGroup, AlertInstance, Integration, ReceivedAlert
from riskops.mail.models import EmailMessage
from riskops.matrices.models import RiskMatrix
from riskops.playbooks.models import PlaybookVersion
from riskops.reviews.models import FeedToken, ReviewCycle, ReviewRequest, RiskReview, Snapshot
from riskops.risks.models import Risk, RiskAssessment, RiskControl, RiskTag
from riskops.scheduler.models import Notice, PeriodicRun
from riskops.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription

metadata = SQLModel.metadata

__all__ = [
    "FeedToken", "ReviewCycle", "ReviewRequest", "RiskReview", "Snapshot",
    "AlertGroup", "AlertInstance", "Integration", "ReceivedAlert",
    "Delivery", "DeliveryAttempt", "EmailMessage", "EscalationPolicy", "Event", "Notice", "PeriodicRun",
    "WebhookSubscription",
    "ApiKey", "AuditEntry", "IdempotentRequest", "Incident", "IncidentMessage", "IncidentRisk", "IncidentRole",
    "IncidentStep", "PlaybookVersion", "Risk", "RiskAssessment", "RiskControl", "RiskMatrix", "RiskTag",
    "TimelineEntry", "metadata",
]  # fmt: skip

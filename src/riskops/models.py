"""Every table, imported in one place so that Alembic and the app see the same metadata."""

from sqlmodel import SQLModel

from riskops.apikeys.models import ApiKey
from riskops.audit.models import AuditEntry
from riskops.continuity.models import Asset, BusinessProcess, ProcessAsset, ProcessDependency, RiskAsset, RiskProcess
from riskops.controls.models import ControlTest
from riskops.events.models import Delivery, Event, WebhookSubscription
from riskops.idempotency import IdempotentRequest
from riskops.incidents.escalations.models import EscalationPolicy
from riskops.incidents.models import (
    Incident,
    IncidentMessage,
    IncidentRisk,
    IncidentRole,
    IncidentStep,
    TimelineEntry,
)
from riskops.integrations.models import AlertGroup, AlertInstance, Integration, ReceivedAlert
from riskops.kris.models import Kri, KriDaily, KriProcess, KriRisk, KriThreshold, KriTransition, KriValue
from riskops.mail.models import EmailMessage
from riskops.notices.models import Notice, PeriodicRun
from riskops.playbooks.models import PlaybookVersion
from riskops.quant.models import LossAnalysis, LossEffect, LossEstimate, LossSimulation, LossTolerance
from riskops.reviews.models import FeedToken, ReviewCycle, ReviewRequest, RiskReview, Snapshot
from riskops.risks.acceptances.models import AcceptanceDecision, AcceptanceRecord, AcceptanceRisk, AcceptanceState
from riskops.risks.appetite.models import CategoryAppetite
from riskops.risks.import_jobs import ImportJob
from riskops.risks.library import Control
from riskops.risks.matrices.models import RiskMatrix
from riskops.risks.models import Risk, RiskAssessment, RiskControl, RiskTag
from riskops.treatments.models import TreatmentAction
from riskops.users.models import PasswordToken, User, UserSession
from riskops.webhooks.models import DeliveryAttempt

metadata = SQLModel.metadata

__all__ = [
    "FeedToken", "ReviewCycle", "ReviewRequest", "RiskReview", "Snapshot",
    "AlertGroup", "AlertInstance", "Integration", "ReceivedAlert",
    "Delivery", "DeliveryAttempt", "EmailMessage", "EscalationPolicy", "Event", "Notice", "PeriodicRun",
    "WebhookSubscription",
    "CategoryAppetite",
    "AcceptanceDecision", "AcceptanceRecord", "AcceptanceRisk", "AcceptanceState",
    "ApiKey", "AuditEntry", "IdempotentRequest", "Incident", "IncidentMessage", "IncidentRisk", "IncidentRole",
    "IncidentStep", "PlaybookVersion", "Risk", "RiskAssessment", "RiskControl", "RiskMatrix", "RiskTag",
    "TimelineEntry", "ImportJob", "PasswordToken", "User", "UserSession", "metadata",
    "TreatmentAction",
    "Asset", "BusinessProcess", "ProcessAsset", "ProcessDependency", "RiskAsset", "RiskProcess",
    "Control", "ControlTest",
    "LossAnalysis", "LossEffect", "LossEstimate", "LossSimulation", "LossTolerance",
    "Kri", "KriDaily", "KriProcess", "KriRisk", "KriThreshold", "KriTransition", "KriValue",
]  # fmt: skip

"""The outbox at the bottom of the import graph: event types, events, and who is owed which event.

A subscription is the list of event patterns a receiver wants; a delivery is one event owed to one
subscription. Both are written here, with the event; the webhooks domain administers subscriptions and sends.
"""

import fnmatch
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key

# Every type the service emits; subscriptions may name these or patterns over them (incident.*).
EVENT_TYPES = (
    "risk.created", "risk.updated", "risk.assessed", "risk.level_changed", "risk.closed", "risk.reopened",
    "risk.review_due", "risk.review_overdue", "risk.acceptance_expiring", "risk.acceptance_expired",
    "risk.materialised", "risk.acceptance_voided", "risk.reassessment_requested", "risk.beyond_tolerance",
    "appetite.changed",
    "incident.declared", "incident.acknowledged", "incident.escalated", "incident.state_changed",
    "incident.breach_imminent", "incident.breached", "incident.mtpd_imminent", "incident.mtpd_breached",
    "playbook.activated", "step.due", "step.overdue", "step.completed",
    "communication.due", "communication.overdue",
    "review.quarter_started", "review.requested", "webhook.disabled", "webhook.test", "import.completed",
    "treatment.action_added", "treatment.action_updated", "treatment.action_completed", "treatment.action_overdue",
    "treatment.action_escalated", "treatment.plan_completed",
    "process.created", "process.updated", "process.archived", "process.restored", "process.deleted",
    "asset.created", "asset.updated", "asset.archived", "asset.restored", "asset.deleted",
    "acceptance.requested", "acceptance.awaiting_second_approval", "acceptance.approved", "acceptance.rejected",
    "acceptance.revoked", "acceptance.expiring", "acceptance.expired", "acceptance.superseded",
    "acceptance.withdrawn", "acceptance.needs_reapproval",
    "control.tested", "control.found_ineffective", "control.test_due",
    "loss.estimate_set", "loss.estimate_deleted", "loss.tolerance_set", "loss.analysis_completed",
    "kri.amber", "kri.red", "kri.recovered", "kri.stale", "kri.escalated",
)  # fmt: skip


def matches(pattern: str, event_type: str) -> bool:
    return fnmatch.fnmatchcase(event_type, pattern)


class Event(SQLModel, table=True):
    """Something that happened, written in the same transaction as the change: the outbox webhooks read."""

    __table_args__ = (
        Index("ix_event_type_id", "type", "id"),
        Index("ix_event_subject_id", "subject_type", "subject_id", "id"),
    )

    id: int = primary_key()
    type: str = Field(max_length=64)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=64)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

    @property
    def message_id(self) -> str:
        return message_id(self.id)


class SubscriptionStatus(StrEnum):
    active = "active"
    paused = "paused"  # events still queue; nothing is sent until resumed
    disabled = "disabled"  # by a 410 answer or days of failure; nothing queues


class PayloadFormat(StrEnum):
    standard = "standard"
    slack = "slack"


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscription"

    id: int = primary_key()
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(sa_type=JSON)
    format: PayloadFormat = Field(default=PayloadFormat.standard, sa_type=String(16))
    # HMAC keys must be kept to sign with (unlike API keys, which are only compared): shown once, never listed.
    secret: str = Field(max_length=200)
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: SubscriptionStatus = Field(default=SubscriptionStatus.active, sa_type=String(16))
    disabled_reason: str | None = Field(default=None, max_length=500)
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """One event owed to one subscription; claimed with a lease, so a crashed sender's work is picked up again."""

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
    )

    id: int = primary_key()
    subscription_id: int = Field(foreign_key="webhook_subscription.id", index=True)
    event_id: int = Field(foreign_key="event.id")
    status: DeliveryStatus = Field(default=DeliveryStatus.pending, sa_type=String(16))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EventPublic(BaseModel):
    id: int
    message_id: str
    type: str
    subject_type: str
    subject_id: str
    occurred_at: datetime
    data: dict[str, Any]


def message_id(event_id: int) -> str:
    """The Standard Webhooks `webhook-id` of an event: the same for every delivery and retry of it."""
    return f"evt_{event_id}"

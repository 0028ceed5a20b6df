from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, StrictInt, field_validator
from pydantic import Field as PydField
from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key
from riskops.events.models import EVENT_TYPES, DeliveryStatus, PayloadFormat, SubscriptionStatus, matches


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"

    id: int = primary_key()
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status_code: int | None = None
    latency_ms: float
    error: str | None = Field(default=None, max_length=500)
    response_excerpt: str | None = Field(default=None, sa_type=Text)


# ---- API shapes ----


def _check_types(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not any(matches(pattern, t) for t in EVENT_TYPES):
            raise ValueError(f"'{pattern}' matches no event type; types are {', '.join(EVENT_TYPES)}")
    return patterns


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    event_types: list[str] = PydField(min_length=1, max_length=50, description="Types or patterns: incident.*, *")
    description: str = PydField(default="", max_length=500)
    format: PayloadFormat = PayloadFormat.standard

    _types = field_validator("event_types")(_check_types)


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl | None = None
    event_types: list[str] | None = PydField(default=None, min_length=1, max_length=50)
    description: str | None = PydField(default=None, max_length=500)
    format: PayloadFormat | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_types(value)


class SubscriptionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    description: str
    event_types: list[str]
    format: PayloadFormat
    status: SubscriptionStatus
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    created_by: str


class SubscriptionCreated(SubscriptionPublic):
    secret: str = PydField(description="The signing secret (whsec_...). Shown in this answer only.")


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_minutes: StrictInt = PydField(
        default=24 * 60, ge=0, le=7 * 24 * 60, description="How long the old secret signs too."
    )


class AttemptPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    response_excerpt: str | None = PydField(
        default=None, description="The first 1 KiB of the receiver's answer. Admin keys only: absent for others."
    )


class DeliveryPublic(BaseModel):
    id: int
    event_id: int
    event_type: str
    message_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    attempt_log: list[AttemptPublic]

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, StrictInt
from pydantic import Field as PydField
from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key

DEFAULT_POLICY = "default"


class EscalationLevel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait_minutes: StrictInt = PydField(
        ge=0, le=7 * 24 * 60, description="After the previous level (or the declaration)."
    )
    webhooks: list[StrictInt] = PydField(default_factory=list, description="Subscription ids to notify.")
    emails: list[EmailStr] = PydField(default_factory=list)


POLICY_NAME = r"^[a-z0-9][a-z0-9-]*$"


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PydField(min_length=1, max_length=64, pattern=POLICY_NAME)
    description: str = PydField(default="", max_length=500)
    levels: list[EscalationLevel] = PydField(min_length=1, max_length=20)
    repeat: StrictInt = PydField(
        default=0, ge=0, le=10, description="Times to run the levels again after the last one."
    )


class EscalationPolicy(SQLModel, table=True):
    __tablename__ = "escalation_policy"

    id: int = primary_key()
    name: str = Field(max_length=64, unique=True)
    spec: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def parsed(self) -> PolicySpec:
        return PolicySpec.model_validate(self.spec)

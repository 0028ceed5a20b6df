from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime


class Event(SQLModel, table=True):
    """Something that happened, written in the same transaction as the change: the outbox webhooks read."""

    __table_args__ = (
        Index("ix_event_type_id", "type", "id"),
        Index("ix_event_subject_id", "subject_type", "subject_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=64)
    subject_type: str = Field(max_length=32)
    subject_id: str = Field(max_length=64)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

    @property
    def message_id(self) -> str:
        """The Standard Webhooks `webhook-id`: the same for every delivery and retry of this event."""
        return f"evt_{self.id}"


class EventPublic(BaseModel):
    id: int
    message_id: str
    type: str
    subject_type: str
    subject_id: str
    occurred_at: datetime
    data: dict[str, Any]

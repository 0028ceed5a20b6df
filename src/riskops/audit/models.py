from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key


class AuditEntry(SQLModel, table=True):
    """One change to one record: append-only (the database refuses UPDATE and DELETE)."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_entity", "entity_type", "entity_id", "id"),)

    id: int = primary_key()
    entity_type: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    action: str = Field(max_length=64)
    actor: str = Field(max_length=200)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    note: str | None = Field(default=None, sa_type=Text)


class AuditEntryPublic(SQLModel):
    id: int
    entity_type: str
    entity_id: str
    action: str
    actor: str
    at: datetime
    changes: dict[str, Any]
    note: str | None

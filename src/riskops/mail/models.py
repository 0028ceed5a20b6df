from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key


class EmailMessage(SQLModel, table=True):
    """An e-mail owed to someone: queued in the transaction that caused it, sent by the scheduler."""

    __tablename__ = "email_message"
    __table_args__ = (Index("ix_email_message_due", "status", "next_attempt_at"),)

    id: int = primary_key()
    to_address: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=Text)
    status: str = Field(default="pending", sa_type=String(16))  # pending, sent, failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

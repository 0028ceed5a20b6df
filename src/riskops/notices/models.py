from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key


class Notice(SQLModel, table=True):
    """A deadline the service must act on by itself: a row, so that no restart or crash can forget it.

    `ref` names what the notice was planned for (a review date, an escalation level), so the same notice is
    never planned twice; `fired_at` marks it done in the same transaction as the events it caused.
    """

    __table_args__ = (
        UniqueConstraint("kind", "subject_type", "subject_id", "ref"),
        # Only pending notices are looked at by a tick: a partial index keeps that cheap at any register size.
        Index(
            "ix_notice_pending_due",
            "due_at",
            sqlite_where=text("fired_at IS NULL"),
            postgresql_where=text("fired_at IS NULL"),
        ),  # fmt: skip
        Index("ix_notice_subject", "subject_type", "subject_id"),
    )

    id: int = primary_key()
    kind: str = Field(max_length=64)
    subject_type: str = Field(max_length=32)
    subject_id: int
    ref: str = Field(max_length=64)
    due_at: datetime = Field(sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    fired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PeriodicRun(SQLModel, table=True):
    """A periodic job's run for one period: the unique key lets one instance of many run it."""

    __tablename__ = "periodic_run"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: int = primary_key()
    job: str = Field(max_length=64)
    period: str = Field(max_length=32)
    ran_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

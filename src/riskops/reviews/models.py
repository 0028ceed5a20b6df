from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from riskops.clock import Moment
from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key
from riskops.risks.fields import Name
from riskops.risks.ratings import Rating


class ReviewOutcome(StrEnum):
    reviewed = "reviewed"
    reassessed = "reassessed"
    proposed_closure = "proposed-closure"


class ReviewCycle(SQLModel, table=True):
    """A quarter's review (id like 2026Q3, fiscal quarters per RISKOPS_FISCAL_YEAR_START_MONTH)."""

    __tablename__ = "review_cycle"

    id: str = Field(primary_key=True, max_length=8)
    starts_at: datetime = Field(sa_type=UTCDateTime)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    opened_by: str = Field(max_length=200)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=200)
    snapshot_id: int | None = Field(default=None, foreign_key="snapshot.id")


class RiskReview(SQLModel, table=True):
    __tablename__ = "risk_review"
    __table_args__ = (UniqueConstraint("cycle_id", "risk_id"),)

    id: int = primary_key()
    cycle_id: str = Field(foreign_key="review_cycle.id", max_length=8, index=True)
    risk_id: int = Field(foreign_key="risk.id")
    outcome: ReviewOutcome = Field(sa_type=String(24))
    comment: str = Field(sa_type=Text)
    reviewer: str = Field(max_length=200)
    reviewed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReviewRequest(SQLModel, table=True):
    """An owner asked to review their risks in a cycle: at most one automatic request per owner and cycle
    (a unique key); an admin's reminder is recorded as a new `reminded_at`."""

    __tablename__ = "review_request"
    __table_args__ = (UniqueConstraint("cycle_id", "owner_key"),)

    id: int = primary_key()
    cycle_id: str = Field(foreign_key="review_cycle.id", max_length=8)
    owner_key: str = Field(max_length=200)
    owner: str = Field(max_length=200)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


Content = dict[str, Any]
"""A snapshot's content: the register as plain JSON data, which every movement and export is computed from."""


class Snapshot(SQLModel, table=True):
    """The register as it stood at `as_of`; immutable (the database refuses UPDATE and DELETE), with its hash."""

    id: int = primary_key()
    cycle_id: str | None = Field(default=None, max_length=8, index=True)
    as_of: datetime = Field(sa_type=UTCDateTime)
    taken_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    taken_by: str = Field(max_length=200)
    content: Content = Field(sa_type=JSON)
    content_hash: str = Field(max_length=64)


class CycleOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cycle: str = PydField(pattern=r"^\d{4}Q[1-4]$", description="e.g. 2026Q3")


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ReviewOutcome
    comment: str = PydField(min_length=1, max_length=5000)
    inherent: Rating | None = PydField(default=None, description="With outcome reassessed.")
    residual: Rating | None = None


class ReviewPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    risk_id: int
    outcome: ReviewOutcome
    comment: str
    reviewer: str
    reviewed_at: datetime


class OwnerProgress(BaseModel):
    owner: str = PydField(description="The first-seen spelling: owners are one owner whatever their case.")
    risks: int
    reviewed: int
    proposed_closure: int
    requested_at: datetime | None = PydField(description="When the owner was asked to review in this cycle.")
    reminded_at: datetime | None = PydField(description="The last reminder an admin sent them.")


class ProgressTotals(BaseModel):
    risks: int = PydField(description="Open risks in the register.")
    reviewed: int = PydField(description="Of those, reviewed in the cycle.")
    proposed_closure: int = PydField(description="Of those reviewed, proposed for closure.")


class CycleBase(BaseModel):
    id: str
    state: Literal["open", "closed"]
    starts_at: datetime
    ends_at: datetime
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    snapshot_id: int | None
    snapshot_hash: str | None


class CycleSummary(CycleBase):
    """A cycle in the list: its progress as totals (per owner on GET /reviews/{cycle})."""

    progress: ProgressTotals


class CyclePublic(CycleBase):
    progress: list[OwnerProgress]


class ReminderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str | None = PydField(
        default=None, min_length=1, max_length=200, description="One owner (any case); default every owner."
    )


class ReminderPublic(BaseModel):
    cycle: str
    reminded: list[str] = PydField(description="The owners reminded, as spelt on their risks.")
    reminded_at: datetime


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: Moment = PydField(description="With a time zone; the register as it stood then.")


class SnapshotPublic(BaseModel):
    id: int
    cycle_id: str | None
    as_of: datetime
    taken_at: datetime
    content_hash: str
    content: dict[str, Any]


# ---- calendar feed tokens ----


class FeedToken(SQLModel, table=True):
    """A secret that opens the calendar feed and nothing else, for calendar apps that keep it in a URL."""

    __tablename__ = "feed_token"

    id: int = primary_key()
    name: str = Field(max_length=100)
    owner: str | None = Field(default=None, max_length=200)
    # 256 random bits, like an API key: a SHA-256 is enough, and only it is kept.
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class FeedTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = PydField(min_length=1, max_length=100, description="What it is for: whose calendar, which app.")
    owner: Name | None = PydField(
        default=None, min_length=1, max_length=200, description="Only this owner's risks; none: the whole register."
    )


class FeedTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    owner: str | None
    prefix: str = PydField(description="The token's first characters, to tell tokens apart.")
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None


class FeedTokenCreated(FeedTokenPublic):
    token: str = PydField(description="The feed token (rkf_...). Shown this once; only its hash is stored.")
    path: str = PydField(description="The feed's path with the token, to append to this service's address.")

"""Key risk indicators: the indicator, its threshold versions, the risks and processes it informs, its values
(raw, and rolled up per day once old) and its status transitions; and the API shapes."""

import math
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StrictInt
from pydantic import Field as PydField
from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.continuity.durations import MAX_MINUTES, minutes, schema
from riskops.db import UTCDateTime, primary_key
from riskops.risks.fields import Name

MAX_QUERY = 2000  # characters of PromQL: enough for any indicator, bounded like every input
MAX_BATCH = 1000  # values in one push


def kri_reference(kri_id: int) -> str:
    """The human reference of a KRI (K-0007)."""
    return f"K-{kri_id:04d}"


class Direction(StrEnum):
    higher_is_worse = "higher_is_worse"
    lower_is_worse = "lower_is_worse"


class Source(StrEnum):
    push = "push"  # values come through the API or a CSV upload
    prometheus = "prometheus"  # pulled on schedule with `query`; pushes are taken too


class KriStatus(StrEnum):
    green = "green"
    amber = "amber"
    red = "red"


# Worst first: what a risk shows of several KRIs.
SEVERITY = {KriStatus.red: 3, KriStatus.amber: 2, KriStatus.green: 1}


def status_of(value: float, direction: Direction, amber: float, red: float) -> KriStatus:
    """Where a value stands: at or beyond a threshold counts as beyond it."""
    sign = 1 if direction == Direction.higher_is_worse else -1  # lower is worse: compare the negated values
    if sign * value >= sign * red:
        return KriStatus.red
    return KriStatus.amber if sign * value >= sign * amber else KriStatus.green


class Kri(SQLModel, table=True):
    __table_args__ = (Index("ix_kri_source_next_pull_at", "source", "next_pull_at"),)

    id: int = primary_key()
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    unit: str = Field(default="", max_length=40)
    direction: Direction = Field(sa_type=String(16))
    amber: float
    red: float
    threshold_version: int = 1
    frequency_minutes: int
    owner: str = Field(max_length=200)
    escalation_policy: str | None = Field(default=None, max_length=64)
    source: Source = Field(sa_type=String(16))
    query: str | None = Field(default=None, sa_type=Text)
    status: KriStatus | None = Field(default=None, sa_type=String(8))
    last_value: float | None = None
    last_value_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Prometheus pulls: when the next is due (claimed by advancing it), and what went wrong with the last one.
    next_pull_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_pull_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_pull_error: str | None = Field(default=None, sa_type=Text)
    # Retired: kept with its values and history, but pulled, judged, escalated and shown on risks no more.
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1

    @property
    def reference(self) -> str:
        return kri_reference(self.id)


def _kri_fk() -> Any:
    return Field(sa_column=Column(Integer, ForeignKey("kri.id"), nullable=False))


class KriThreshold(SQLModel, table=True):
    """One version of a KRI's thresholds, with who set them and when: append-only."""

    __tablename__ = "kri_threshold"
    __table_args__ = (UniqueConstraint("kri_id", "version"),)

    id: int = primary_key()
    kri_id: int = _kri_fk()
    version: int
    direction: Direction = Field(sa_type=String(16))
    amber: float
    red: float
    set_by: str = Field(max_length=200)
    set_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class KriRisk(SQLModel, table=True):
    __tablename__ = "kri_risk"

    kri_id: int = Field(sa_column=Column(Integer, ForeignKey("kri.id"), primary_key=True))
    risk_id: int = Field(sa_column=Column(Integer, ForeignKey("risk.id"), primary_key=True, index=True))


class KriProcess(SQLModel, table=True):
    __tablename__ = "kri_process"

    kri_id: int = Field(sa_column=Column(Integer, ForeignKey("kri.id"), primary_key=True))
    # A process deleted (only ever one nothing else links to) takes its KRI links with it: continuity knows no KRI.
    process_id: int = Field(
        sa_column=Column(Integer, ForeignKey("business_process.id", ondelete="CASCADE"), primary_key=True, index=True)
    )


class KriValue(SQLModel, table=True):
    """A measurement: one per KRI and moment, the unique key deciding (a repeated push is a no-op)."""

    __tablename__ = "kri_value"
    __table_args__ = (UniqueConstraint("kri_id", "at"),)

    id: int = primary_key()
    kri_id: int = _kri_fk()
    at: datetime = Field(sa_type=UTCDateTime)
    value: float = Field(sa_type=Float)
    source: str = Field(max_length=16)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class KriDaily(SQLModel, table=True):
    """Raw values older than the retention window, rolled into one row per KRI and UTC day."""

    __tablename__ = "kri_daily"

    kri_id: int = Field(sa_column=Column(Integer, ForeignKey("kri.id"), primary_key=True))
    day: date = Field(primary_key=True)
    min: float
    max: float
    mean: float
    last: float
    last_at: datetime = Field(sa_type=UTCDateTime)
    count: int


class KriTransition(SQLModel, table=True):
    """A change of status, by the value that caused it: append-only, what snapshots and movements read."""

    __tablename__ = "kri_transition"
    __table_args__ = (Index("ix_kri_transition_recorded_at", "recorded_at", "id"),)

    id: int = primary_key()
    kri_id: int = _kri_fk()
    from_status: str | None = Field(default=None, max_length=8)
    to_status: str = Field(max_length=8)
    value: float
    at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---- inputs ----


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]
Frequency = Annotated[
    StrictInt, BeforeValidator(minutes), PydField(ge=1, le=MAX_MINUTES), schema(1, "How often a value is expected")
]
Refs = Annotated[list[Annotated[str, PydField(min_length=1, max_length=64)]], PydField(max_length=100)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a timestamp with its time zone (Z or +hh:mm)")
    return value


Aware = Annotated[datetime, AfterValidator(_aware)]


def check_thresholds(direction: Direction, amber: float, red: float) -> str | None:
    """Why the thresholds do not fit the direction, or None."""
    if direction == Direction.higher_is_worse and not amber < red:
        return "red must be above amber when higher is worse"
    if direction == Direction.lower_is_worse and not red < amber:
        return "red must be below amber when lower is worse"
    return None


class KriCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = PydField(min_length=1, max_length=200)
    description: str = PydField(default="", max_length=20000)
    unit: str = PydField(default="", max_length=40)
    direction: Direction
    amber: Finite
    red: Finite
    frequency: Frequency
    owner: Name = PydField(min_length=1, max_length=200)
    escalation_policy: str | None = PydField(default=None, max_length=64)
    source: Source = Source.push
    query: str | None = PydField(default=None, min_length=1, max_length=MAX_QUERY, description="PromQL.")
    risks: Refs = PydField(default_factory=list, description="Risk ids or references (R-0042).")
    processes: Refs = PydField(default_factory=list, description="Process references (P-0003) or keys.")


class KriUpdate(BaseModel):
    """Any of the fields; new thresholds (or direction) make a new threshold version."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = PydField(default=None, min_length=1, max_length=200)
    description: str | None = PydField(default=None, max_length=20000)
    unit: str | None = PydField(default=None, max_length=40)
    direction: Direction | None = None
    amber: Finite | None = None
    red: Finite | None = None
    frequency: Frequency | None = None
    owner: Name | None = PydField(default=None, min_length=1, max_length=200)
    escalation_policy: str | None = PydField(default=None, max_length=64)
    source: Source | None = None
    query: str | None = PydField(default=None, min_length=1, max_length=MAX_QUERY)
    risks: Refs | None = None
    processes: Refs | None = None
    retired: bool | None = PydField(
        default=None,
        description="true retires the KRI (no more values, pulls, stale or escalation notices, and no say in its "
        "risks' kri_status; its values and history are kept); false puts it back to work.",
    )


class ValueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Aware = PydField(description="When it was measured, with its time zone.")
    value: Finite


class ValuesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: list[ValueIn] = PydField(min_length=1, max_length=MAX_BATCH)


# ---- answers ----


class ThresholdVersion(BaseModel):
    version: int
    direction: Direction
    amber: float
    red: float
    set_by: str
    set_at: datetime


class LinkedRef(BaseModel):
    id: int
    reference: str
    title: str


class KriPublic(BaseModel):
    id: int
    reference: str
    name: str
    description: str
    unit: str
    direction: Direction
    amber: float
    red: float
    threshold_version: int
    thresholds: list[ThresholdVersion] = PydField(description="Every version of the thresholds, oldest first.")
    frequency_minutes: int
    owner: str
    escalation_policy: str | None
    source: Source
    query: str | None
    status: KriStatus | None = PydField(description="From the newest value; null before the first.")
    status_since: datetime | None
    last_value: float | None
    last_value_at: datetime | None
    last_pull_at: datetime | None
    last_pull_error: str | None
    retired_at: datetime | None = PydField(description="When it was retired; null while in use.")
    risks: list[LinkedRef]
    processes: list[LinkedRef]
    version: int
    created_at: datetime
    updated_at: datetime


class ValuesRecorded(BaseModel):
    recorded: int = PydField(description="Values new to the KRI.")
    unchanged: int = PydField(description="Values already recorded at the same moment with the same value.")
    status: KriStatus | None


class ValuePoint(BaseModel):
    at: datetime
    value: float
    resolution: str = PydField(description="raw, or day (a rolled-up day: value is its last; min/max/mean/count).")
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    count: int = 1

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from riskops.clock import Moment
from riskops.clock import now as utcnow
from riskops.crisis import Audience, Severity
from riskops.db import UTCDateTime, primary_key


class IncidentState(StrEnum):
    declared = "declared"
    acknowledged = "acknowledged"
    mitigated = "mitigated"
    resolved = "resolved"
    closed = "closed"


# Still being worked on: the recovery deadlines are watched and an alert's news moves it. The rest have ended.
OPEN = frozenset({IncidentState.declared, IncidentState.acknowledged, IncidentState.mitigated})
ENDED = frozenset(IncidentState) - OPEN


class StepStatus(StrEnum):
    pending = "pending"
    in_progress = "in-progress"
    done = "done"
    skipped = "skipped"


class MessageStatus(StrEnum):
    pending = "pending"
    sent = "sent"


# An obligation in one of these states is still owed: it keeps its reminders and, if required, blocks closing.
UNFINISHED_STEP = (StepStatus.pending, StepStatus.in_progress)
UNSENT_MESSAGE = (MessageStatus.pending,)


# ---- tables ----


class Incident(SQLModel, table=True):
    __table_args__ = (Index("ix_incident_state_declared", "is_exercise", "state", "declared_at"),)

    id: int = primary_key()
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    severity: Severity = Field(sa_type=String(8))
    state: IncidentState = Field(default=IncidentState.declared, sa_type=String(16))
    is_exercise: bool = False
    playbook_slug: str | None = Field(default=None, max_length=64, index=True)
    playbook_version: int | None = None
    rto_minutes: int | None = None
    declared_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    declared_by: str = Field(max_length=200)
    # When the organisation became aware: legal clocks (GDPR Art. 33's 72 hours) run from here.
    detected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=200)
    # Acknowledged by a machine (an integration, a non-paging route): not a human's time to acknowledge.
    acknowledged_automatically: bool = False
    mitigated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    breach_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    mtpd_minutes: int | None = None
    # The maximum tolerable period of disruption runs out here: watched like the RTO's breach_at.
    mtpd_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    summary: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    objectives_met: bool | None = None
    version: int = 1

    @property
    def reference(self) -> str:
        return reference(self.id)


class IncidentRisk(SQLModel, table=True):
    __tablename__ = "incident_risk"

    incident_id: int = Field(sa_column=Column(Integer, ForeignKey("incident.id"), primary_key=True))
    risk_id: int = Field(sa_column=Column(Integer, ForeignKey("risk.id"), primary_key=True, index=True))


class IncidentRole(SQLModel, table=True):
    __tablename__ = "incident_role"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: int = primary_key()
    incident_id: int = Field(foreign_key="incident.id", index=True)
    key: str = Field(max_length=64)
    title: str = Field(max_length=100)
    instructions: str = Field(sa_type=Text)
    required: bool
    assignee: str | None = Field(default=None, max_length=200)
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IncidentStep(SQLModel, table=True):
    __tablename__ = "incident_step"
    __table_args__ = (UniqueConstraint("incident_id", "key"), Index("ix_incident_step_due", "status", "due_at"))

    id: int = primary_key()
    incident_id: int = Field(foreign_key="incident.id", index=True)
    key: str = Field(max_length=64)
    position: int
    title: str = Field(max_length=200)
    instructions: str = Field(sa_type=Text)
    role: str = Field(max_length=64)
    depends_on: list[str] = Field(default_factory=list, sa_type=JSON)
    due_at: datetime = Field(sa_type=UTCDateTime)
    required: bool = True
    status: StepStatus = Field(default=StepStatus.pending, sa_type=String(16))
    assignee: str | None = Field(default=None, max_length=200)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_by: str | None = Field(default=None, max_length=200)
    skip_reason: str | None = Field(default=None, sa_type=Text)


class IncidentMessage(SQLModel, table=True):
    """A communication the plan owes an audience, with its deadline."""

    __tablename__ = "incident_message"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: int = primary_key()
    incident_id: int = Field(foreign_key="incident.id", index=True)
    key: str = Field(max_length=64)
    position: int
    audience: Audience = Field(sa_type=String(16))
    title: str = Field(max_length=200)
    role: str = Field(max_length=64)
    channel: str = Field(max_length=100)
    body: str = Field(sa_type=Text)
    due_at: datetime = Field(sa_type=UTCDateTime)
    required: bool = True
    status: MessageStatus = Field(default=MessageStatus.pending, sa_type=String(16))
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_by: str | None = Field(default=None, max_length=200)


class TimelineEntry(SQLModel, table=True):
    """What happened on an incident, in order; append-only."""

    __tablename__ = "incident_timeline"
    __table_args__ = (Index("ix_incident_timeline_incident_id_id", "incident_id", "id"),)

    id: int = primary_key()
    incident_id: int = Field(foreign_key="incident.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    kind: str = Field(max_length=40)
    text: str = Field(sa_type=Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


# ---- API shapes ----


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A linked risk by numeric id (a JSON number or string) or reference (R-0042); StrictInt, so true is not risk 1.
RiskRef = StrictInt | str


class IncidentCreate(_Strict):
    title: str | None = PydField(
        default=None, min_length=1, max_length=200, description="Required unless a playbook gives a default."
    )
    severity: Severity | None = PydField(default=None, description="Required unless a playbook gives a default.")
    description: str = PydField(default="", max_length=20000)
    risk_ids: list[RiskRef] = PydField(default_factory=list, max_length=100, description="Risk ids or references.")
    detected_at: Moment | None = PydField(
        default=None,
        description="When the organisation became aware (with a time zone, not in the future); default: now. "
        "Plan items with due_from 'detection' count from here.",
    )
    playbook: str | None = PydField(default=None, description="A playbook id to activate with the incident.")
    playbook_version: StrictInt | None = PydField(default=None, ge=1)
    exercise: StrictBool = False


class FollowUpAction(_Strict):
    title: str = PydField(min_length=1, max_length=200)
    owner: str = PydField(min_length=1, max_length=200)
    due_date: date | None = None
    control_for: str | None = PydField(
        default=None, description="A linked risk (id or reference) on which this action becomes a control."
    )


class PostIncidentSummary(_Strict):
    what_happened: str = PydField(min_length=1, max_length=20000)
    impact: str = PydField(min_length=1, max_length=20000)
    root_cause: str = PydField(min_length=1, max_length=20000)
    follow_up_actions: list[FollowUpAction] = PydField(default_factory=list, max_length=100)
    objectives_met: StrictBool | None = PydField(
        default=None, description="Exercises only: did the plan meet its objectives?"
    )


class Transition(_Strict):
    note: str | None = PydField(default=None, max_length=5000)


class StepCompletion(_Strict):
    note: str | None = PydField(default=None, max_length=5000)


class Closure(_Strict):
    summary: PostIncidentSummary


class Assignment(_Strict):
    assignee: str = PydField(min_length=1, max_length=200)


class SkipRequest(_Strict):
    reason: str = PydField(min_length=1, max_length=5000)


class NoteCreate(_Strict):
    text: str = PydField(min_length=1, max_length=20000)


class MessageSent(_Strict):
    note: str | None = PydField(default=None, max_length=5000)


class StepPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    title: str
    instructions: str
    role: str
    depends_on: list[str]
    due_at: datetime
    required: bool
    status: StepStatus
    assignee: str | None
    started_at: datetime | None
    finished_at: datetime | None
    finished_by: str | None
    skip_reason: str | None
    overdue: bool = False


class RolePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    title: str
    instructions: str
    required: bool
    assignee: str | None
    assigned_at: datetime | None


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    audience: Audience
    title: str
    role: str
    channel: str
    body: str
    due_at: datetime
    required: bool
    status: MessageStatus
    sent_at: datetime | None
    sent_by: str | None
    overdue: bool = False


class Measures(BaseModel):
    time_to_acknowledge_seconds: float | None = PydField(
        description="From the declaration to a person's acknowledgement; null until then, or if acknowledged "
        "automatically."
    )
    time_to_resolve_seconds: float | None = PydField(description="From the declaration to the latest resolution.")
    rto_met: bool | None = PydField(
        description="True once resolved by breach_at; false as soon as breach_at passes unresolved, or if resolved "
        "later; null while it can still go either way, or without an RTO."
    )
    breached: bool = PydField(description="breach_at passed while unresolved, or the resolution came after it.")
    mtpd_exceeded: bool = PydField(description="mtpd_at passed while unresolved, or the resolution came after it.")


class IncidentSummaryPublic(BaseModel):
    id: int
    reference: str
    title: str
    severity: Severity
    state: IncidentState
    exercise: bool
    playbook: str | None
    playbook_version: int | None
    declared_at: datetime
    breach_at: datetime | None
    risk_ids: list[str] = PydField(description="Linked risks, by reference (R-0042).")


class IncidentPublic(IncidentSummaryPublic):
    description: str
    declared_by: str
    detected_at: datetime = PydField(description="When the organisation became aware; at most the declaration.")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_automatically: bool = PydField(
        description="Acknowledged by a machine (an integration, a route that does not page), not a person."
    )
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rto_minutes: int | None
    mtpd_minutes: int | None
    mtpd_at: datetime | None = PydField(description="The maximum tolerable period of disruption runs out here.")
    allowed_transitions: list[str]
    unfilled_required_roles: list[str]
    measures: Measures
    summary: PostIncidentSummary | None
    objectives_met: bool | None
    roles: list[RolePublic]
    steps: list[StepPublic]
    communications: list[MessagePublic]
    version: int


class TimelineEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    kind: str
    text: str
    data: dict[str, Any]


class IncidentCounts(BaseModel):
    exercise: bool
    by_state: dict[str, int]
    by_severity: dict[str, int]


class Activation(BaseModel):
    """Start a playbook: declares the incident and lays out its plan in one transaction."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = PydField(
        default=None, min_length=1, max_length=200, description="Default: the playbook's title."
    )
    description: str = PydField(default="", max_length=20000)
    severity: Severity | None = PydField(default=None, description="Default: the playbook's severity.")
    # StrictInt: a JSON number is a risk id, but true is not risk 1.
    risk_ids: list[StrictInt | str] = PydField(
        default_factory=list, max_length=100, description="Risk ids or references."
    )
    detected_at: Moment | None = PydField(
        default=None,
        description="When the organisation became aware (with a time zone, not in the future); default: now. "
        "Plan items with due_from 'detection' count from here.",
    )
    version: StrictInt | None = PydField(default=None, ge=1, description="Default: the latest version in service.")
    exercise: StrictBool = PydField(
        default=False, description="A drill: runs the same, kept apart in lists and counts."
    )


def reference(incident_id: int) -> str:
    """An incident's human reference, INC-0007."""
    return f"INC-{incident_id:04d}"

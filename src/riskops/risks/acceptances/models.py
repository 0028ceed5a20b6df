"""An acceptance as its own record: the request covering one or several risks, the decisions on it, and the
state of each covered risk that the request and every decision applied to (the audit evidence of the owner's
acceptance of residual risk, ISO/IEC 27001:2022 6.1.3 f)."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import Field as PydField
from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key
from riskops.risks.fields import Expiry
from riskops.risks.models import RiskStatus, Treatment
from riskops.risks.ratings import ScoredRating


class AcceptanceStatus(StrEnum):
    requested = "requested"
    approved = "approved"  # in force until it expires, is revoked, superseded or withdrawn
    rejected = "rejected"
    expired = "expired"
    revoked = "revoked"
    superseded = "superseded"  # an approved extension (or a newer recorded acceptance) took over
    withdrawn = "withdrawn"  # every risk it covered left it: their treatment was changed from 'accept'


class DecisionKind(StrEnum):
    approve = "approve"
    reject = "reject"
    revoke = "revoke"
    extend = "extend"  # on the acceptance an approved extension took over from


def reference(acceptance_id: int) -> str:
    """The human reference of an acceptance (ACC-0007)."""
    return f"ACC-{acceptance_id:04d}"


_REFERENCE = re.compile(r"^(?:ACC-)?0*(\d{1,12})$", re.IGNORECASE)


def parse_reference(ref: str) -> int | None:
    """The id of ACC-0007 (or 7); None for anything else."""
    match = _REFERENCE.match(ref.strip())
    return int(match.group(1)) if match else None


# ---- tables ----


class AcceptanceRecord(SQLModel, table=True):
    """One acceptance. Its status, expiry and flag change; what was asked and decided never does (the
    decisions and states below are append-only)."""

    __tablename__ = "acceptance"
    __table_args__ = (Index("ix_acceptance_status_expires_at", "status", "expires_at", "id"),)

    id: int = primary_key()
    status: AcceptanceStatus = Field(default=AcceptanceStatus.requested, sa_type=String(16))
    requested_by: str = Field(max_length=200)
    # Who asked, as four eyes compares people: a user's id, or an API key's (see records.identity).
    requested_by_identity: str = Field(max_length=64)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    justification: str = Field(sa_type=Text)
    conditions: str = Field(default="", sa_type=Text)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    extends_id: int | None = Field(default=None, foreign_key="acceptance.id")
    # Approved outside riskops and recorded here (a risk's inline acceptance, or one migrated from before 0014).
    recorded: bool = False
    needs_reapproval: bool = False
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1

    @property
    def reference(self) -> str:
        return reference(self.id)


class AcceptanceRisk(SQLModel, table=True):
    """A risk an acceptance covers, the treatment it goes back to when the acceptance ends, and when it left."""

    __tablename__ = "acceptance_risk"
    __table_args__ = (Index("ix_acceptance_risk_risk_id", "risk_id", "acceptance_id"),)

    acceptance_id: int = Field(sa_column=Column(Integer, ForeignKey("acceptance.id"), primary_key=True))
    risk_id: int = Field(sa_column=Column(Integer, ForeignKey("risk.id"), primary_key=True))
    treatment_before: Treatment = Field(sa_type=String(16))
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    released_reason: str | None = Field(default=None, max_length=200)


class AcceptanceDecision(SQLModel, table=True):
    """A decision on an acceptance; append-only."""

    __tablename__ = "acceptance_decision"
    __table_args__ = (Index("ix_acceptance_decision_acceptance_id_id", "acceptance_id", "id"),)

    id: int = primary_key()
    acceptance_id: int = Field(foreign_key="acceptance.id")
    kind: DecisionKind = Field(sa_type=String(16))
    decided_by: str = Field(max_length=200)
    identity: str = Field(max_length=64)  # of whoever made the decision in riskops (for a recorded one: recorded it)
    role: str = Field(max_length=16)
    comment: str = Field(default="", sa_type=Text)
    # An approval given outside riskops: decided_by names the approver, recorded_by who recorded it (not signed).
    recorded_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AcceptanceState(SQLModel, table=True):
    """A covered risk as it stood when the request was made (decision_id null) or a decision was taken;
    append-only."""

    __tablename__ = "acceptance_state"
    __table_args__ = (Index("ix_acceptance_state_acceptance_id_id", "acceptance_id", "id"),)

    id: int = primary_key()
    acceptance_id: int = Field(foreign_key="acceptance.id")
    risk_id: int = Field(foreign_key="risk.id")
    decision_id: int | None = Field(default=None, foreign_key="acceptance_decision.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: RiskStatus = Field(sa_type=String(16))
    treatment: Treatment = Field(sa_type=String(16))
    category: str = Field(max_length=100)
    matrix_version: int = Field(foreign_key="risk_matrix.version")
    inherent_likelihood: int
    inherent_impact: int
    inherent_score: int
    inherent_level: str = Field(max_length=40)
    residual_likelihood: int | None = None
    residual_impact: int | None = None
    residual_score: int | None = None
    residual_level: str | None = Field(default=None, max_length=40)
    score: int
    level: str = Field(max_length=40)
    appetite: str = Field(max_length=40)  # the category's limits on that matrix, then
    tolerance: str | None = Field(default=None, max_length=40)
    outside_appetite: bool
    beyond_tolerance: bool


# ---- API shapes ----

RiskRef = Annotated[str, StringConstraints(min_length=1, max_length=20)]


class AcceptanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    risks: list[RiskRef] = PydField(min_length=1, max_length=100, description="The risks to accept (R-0042 or 42).")
    justification: str = PydField(min_length=1, max_length=5000, description="Why the residual risk is acceptable.")
    conditions: str = PydField(default="", max_length=5000, description="What must hold for it to stay acceptable.")
    expires_at: Expiry = PydField(
        description="The proposed expiry: in the future and at most RISKOPS_ACCEPTANCE_MAX_DAYS days away (365 by "
        "default). A timezone-aware time, or a date alone for the end of that day (UTC)."
    )


class AcceptanceExtension(BaseModel):
    """A new request for the risks the acceptance covers, which stays in force until this one is decided."""

    model_config = ConfigDict(extra="forbid")

    justification: str = PydField(min_length=1, max_length=5000)
    conditions: str = PydField(default="", max_length=5000)
    expires_at: Expiry = PydField(description="As for a request: future, within RISKOPS_ACCEPTANCE_MAX_DAYS.")


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = PydField(default="", max_length=2000)


class Refusal(BaseModel):
    """A rejection or a revocation: it says why."""

    model_config = ConfigDict(extra="forbid")

    comment: str = PydField(min_length=1, max_length=2000)


class DecisionPublic(BaseModel):
    id: int
    kind: DecisionKind
    decided_by: str
    role: str = PydField(description="The role of whoever decided (for a recorded approval: of who recorded it).")
    comment: str
    recorded_by: str | None = PydField(description="An approval given outside riskops: who recorded it.")
    decided_at: datetime


class RiskStatePublic(BaseModel):
    decision: int | None = PydField(description="The decision this state was taken for; null: the request.")
    at: datetime
    status: RiskStatus
    treatment: Treatment
    category: str
    matrix_version: int
    inherent: ScoredRating
    residual: ScoredRating | None
    level: str
    appetite: str
    tolerance: str | None
    outside_appetite: bool
    beyond_tolerance: bool


class CoveredRisk(BaseModel):
    risk: str
    title: str
    treatment_before: Treatment = PydField(description="The treatment the risk goes back to when this ends.")
    in_force: bool = PydField(description="The acceptance is approved and holds this risk now.")
    released_at: datetime | None
    released_reason: str | None
    states: list[RiskStatePublic]


class ApprovalNeeded(BaseModel):
    approvals: int = PydField(description="2 when a risk is beyond its category's tolerance, else 1.")
    admin: bool = PydField(description="An admin must give one of them: a risk is above its category's appetite.")
    given: int


class AcceptanceSummary(BaseModel):
    reference: str
    status: AcceptanceStatus
    risks: list[str]
    requested_by: str
    requested_at: datetime
    justification: str
    conditions: str
    expires_at: datetime
    needs_reapproval: bool = PydField(description="A covered risk's level rose, or it moved to another matrix.")
    recorded: bool = PydField(description="Approved outside riskops and recorded here, not signed in riskops.")
    extends: str | None
    approved_by: list[str]
    approved_at: datetime | None
    ended_at: datetime | None
    version: int


class AcceptancePublic(AcceptanceSummary):
    approval: ApprovalNeeded | None = PydField(description="For a request: what approving it takes now.")
    covered: list[CoveredRisk]
    decisions: list[DecisionPublic]

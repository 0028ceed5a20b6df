from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    field_validator,
    model_validator,
)
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, func, text
from sqlmodel import Field, Relationship, SQLModel

from riskops.clock import Moment
from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key
from riskops.risks.appetite.models import AppetiteResponse
from riskops.risks.fields import Expiry, Name, Tag, normalise_tags
from riskops.risks.library import Control, ControlPublic, ControlStatus
from riskops.risks.ratings import Rating, ScoredRating, Target, TargetRating


class RiskStatus(StrEnum):
    open = "open"
    closed = "closed"


class RiskType(StrEnum):
    threat = "threat"
    opportunity = "opportunity"


class Treatment(StrEnum):
    avoid = "avoid"
    mitigate = "mitigate"
    transfer = "transfer"
    accept = "accept"
    # An opportunity's responses (ISO 31000 / PMBOK): make it happen, make it likelier or larger, share it.
    exploit = "exploit"
    enhance = "enhance"
    share = "share"


# The treatments each type of risk may take; accept is common to both.
TREATMENTS = {
    RiskType.threat: (Treatment.avoid, Treatment.mitigate, Treatment.transfer, Treatment.accept),
    RiskType.opportunity: (Treatment.exploit, Treatment.enhance, Treatment.share, Treatment.accept),
}
DEFAULT_TREATMENT = {RiskType.threat: Treatment.mitigate, RiskType.opportunity: Treatment.enhance}


class AssessmentKind(StrEnum):
    initial = "initial"
    reassessment = "reassessment"
    rescore = "rescore"


def category_key(category: str) -> str:
    """Categories are matched case-insensitively and without surrounding spaces, like owners."""
    return category.strip().lower()  # SQL's lower(), as the category index is built on both databases


def reference(risk_id: int) -> str:
    """The human reference of a risk (R-0042), also for one known by its id alone."""
    return f"R-{risk_id:04d}"


# ---- tables ----


class RiskTag(SQLModel, table=True):
    __tablename__ = "risk_tag"
    # The tag filter reads a tag's risks straight from this index, without a look-up per row.
    __table_args__ = (Index("ix_risk_tag_tag_risk_id", "tag", "risk_id"),)

    risk_id: int = Field(sa_column=Column(Integer, ForeignKey("risk.id"), primary_key=True))
    tag: str = Field(sa_column=Column(String(50), primary_key=True))


class Risk(SQLModel, table=True):
    __table_args__ = (
        Index("ix_risk_score_id", "score", "id"),
        Index("ix_risk_next_review_at_id", "next_review_at", "id"),
        Index("ix_risk_updated_at_id", "updated_at", "id"),
        # The list filters people use most, each ordered the way the default sort reads them.
        Index("ix_risk_status_level_score", "status", "level", "score", "id"),
        # Owner and category match case-insensitively: the indexes are on the lower-cased text.
        Index("ix_risk_category_ci_score", func.lower(text("category")), "score", "id"),
        Index("ix_risk_owner_ci_score", func.lower(text("owner")), "score", "id"),
        # Text search (q=) has indexes of its own kind per database, outside these models: see migration 0008.
    )

    id: int = primary_key()
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    type: RiskType = Field(default=RiskType.threat, sa_type=String(16), sa_column_kwargs={"server_default": "threat"})
    # The risk statement: because of <cause> there is a risk that <event>, which would lead to <consequence>.
    cause: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    event: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    consequence: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    source: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})
    objectives: list[str] = Field(default_factory=list, sa_type=JSON, sa_column_kwargs={"server_default": "[]"})
    category: str = Field(max_length=100)
    owner: str = Field(max_length=200)
    status: RiskStatus = Field(default=RiskStatus.open, sa_type=String(16))
    treatment: Treatment = Field(sa_type=String(16))
    matrix_version: int = Field(foreign_key="risk_matrix.version")
    inherent_likelihood: int
    inherent_impact: int
    inherent_impacts: dict[str, int] | None = Field(default=None, sa_type=JSON)
    inherent_score: int
    inherent_level: str = Field(max_length=40)
    residual_likelihood: int | None = None
    residual_impact: int | None = None
    residual_impacts: dict[str, int] | None = Field(default=None, sa_type=JSON)
    residual_score: int | None = None
    residual_level: str | None = Field(default=None, max_length=40)
    # Where the treatment should bring the risk, and by when: never above the current rating (for an opportunity,
    # never below it).
    target_likelihood: int | None = None
    target_impact: int | None = None
    target_score: int | None = None
    target_level: str | None = Field(default=None, max_length=40)
    target_date: date | None = None
    # The current rating: residual where assessed, else inherent. Stored so lists can filter and sort on an index.
    score: int
    level: str = Field(max_length=40)
    # Where the current level stands against the category's appetite (risks.appetite.service.place): stored, so
    # that lists filter on it, and placed again whenever the level, the category or the appetite moves.
    outside_appetite: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    beyond_tolerance: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    target_within_appetite: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # The worst status of the key risk indicators linked to it (red, amber, green; null without one): kept by
    # riskops.kris, which knows the register (the register knows no KRI).
    kri_status: str | None = Field(default=None, max_length=8)
    acceptance_approver: str | None = Field(default=None, max_length=200)
    acceptance_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_reviewed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    next_review_at: datetime = Field(sa_type=UTCDateTime)
    next_review_set_by_hand: bool = False
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closure_reason: str | None = Field(default=None, sa_type=Text)
    materialised_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 1

    tag_rows: list[RiskTag] = Relationship(
        sa_relationship_kwargs={"lazy": "selectin", "cascade": "all, delete-orphan", "order_by": "RiskTag.tag"}
    )
    controls: list["RiskControl"] = Relationship(
        sa_relationship_kwargs={"lazy": "selectin", "order_by": "RiskControl.id"}
    )

    @property
    def reference(self) -> str:
        return reference(self.id)  # a stored risk has its id

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class RiskControl(SQLModel, table=True):
    """A library control applied to a risk, with how far its implementation on this risk has come."""

    __tablename__ = "risk_control"
    # A control is applied to a risk once; the key also finds a risk's controls.
    __table_args__ = (UniqueConstraint("risk_id", "control_id"),)

    id: int = primary_key()
    risk_id: int = Field(foreign_key="risk.id")
    control_id: int = Field(foreign_key="control.id", index=True)
    status: ControlStatus = Field(default=ControlStatus.planned, sa_type=String(16))
    due_date: date | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    control: Control = Relationship(sa_relationship_kwargs={"lazy": "joined", "innerjoin": True})


class RiskAssessment(SQLModel, table=True):
    """One scoring of a risk; append-only. The oldest is the assessment the risk was created with."""

    __tablename__ = "risk_assessment"
    __table_args__ = (Index("ix_risk_assessment_risk_id_id", "risk_id", "id"),)

    id: int = primary_key()
    risk_id: int = Field(foreign_key="risk.id")
    kind: AssessmentKind = Field(sa_type=String(16))
    matrix_version: int = Field(foreign_key="risk_matrix.version")
    inherent_likelihood: int
    inherent_impact: int
    inherent_score: int
    inherent_level: str = Field(max_length=40)
    residual_likelihood: int | None = None
    residual_impact: int | None = None
    residual_score: int | None = None
    residual_level: str | None = Field(default=None, max_length=40)
    inherent_impacts: dict[str, int] | None = Field(default=None, sa_type=JSON)
    residual_impacts: dict[str, int] | None = Field(default=None, sa_type=JSON)
    rationale: str = Field(sa_type=Text)
    assessed_by: str = Field(max_length=200)
    assessed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---- API shapes ----


class AcceptanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approver: str = PydField(min_length=1, max_length=200)
    expires_at: Expiry = PydField(
        description="When the acceptance lapses: a timezone-aware time, or a date alone for the end of that day (UTC)."
    )


class Acceptance(BaseModel):
    approver: str
    expires_at: datetime
    expired: bool


class RiskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = PydField(min_length=1, max_length=200)
    description: str = PydField(default="", max_length=20000)
    type: RiskType = RiskType.threat
    cause: str = PydField(default="", max_length=2000, description="Because of ...")
    event: str = PydField(default="", max_length=2000, description="... there is a risk that ...")
    consequence: str = PydField(default="", max_length=2000, description="... which would lead to ...")
    source: str = PydField(default="", max_length=200, description="Where the risk comes from (risk source).")
    objectives: list[Annotated[str, PydField(min_length=1, max_length=200)]] = PydField(
        default_factory=list, max_length=20, description="The objectives or services the risk affects."
    )
    category: Name = PydField(min_length=1, max_length=100)
    owner: Name = PydField(min_length=1, max_length=200)
    inherent: Rating
    residual: Rating | None = None
    target: TargetRating | None = None
    treatment: Treatment = PydField(
        default=Treatment.mitigate, description="Default mitigate for a threat, enhance for an opportunity."
    )
    acceptance: AcceptanceIn | None = None
    tags: list[Tag] = PydField(default_factory=list, max_length=50)
    next_review_at: Moment | None = PydField(
        default=None, description="Set by hand; otherwise it follows from the level's review interval."
    )
    rationale: str = PydField(default="Initial assessment", min_length=1, max_length=2000)

    _tags = field_validator("tags")(normalise_tags)

    @model_validator(mode="after")
    def _treatment_of_type(self) -> "RiskCreate":
        if "treatment" not in self.model_fields_set:
            self.treatment = DEFAULT_TREATMENT[self.type]
        return self


class RiskUpdate(BaseModel):
    """Edit descriptive fields. Scores change only through an assessment, so that history stays complete."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = PydField(default=None, min_length=1, max_length=200)
    description: str | None = PydField(default=None, max_length=20000)
    type: RiskType | None = None
    cause: str | None = PydField(default=None, max_length=2000)
    event: str | None = PydField(default=None, max_length=2000)
    consequence: str | None = PydField(default=None, max_length=2000)
    source: str | None = PydField(default=None, max_length=200)
    objectives: list[Annotated[str, PydField(min_length=1, max_length=200)]] | None = PydField(
        default=None, max_length=20
    )
    category: Name | None = PydField(default=None, min_length=1, max_length=100)
    owner: Name | None = PydField(default=None, min_length=1, max_length=200)
    treatment: Treatment | None = None
    target: TargetRating | None = PydField(default=None, description="Send null to clear the target.")
    acceptance: AcceptanceIn | None = None
    tags: list[Tag] | None = PydField(default=None, max_length=50)
    next_review_at: Moment | None = PydField(
        default=None, description="A date set by hand; send null to go back to the level's review interval."
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else normalise_tags(tags)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = PydField(min_length=1, max_length=2000)


class AssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inherent: Rating | None = None
    residual: Rating | None = None
    rationale: str = PydField(min_length=1, max_length=2000)


def statement(risk_type: str, cause: str, event: str, consequence: str) -> str | None:
    """The risk statement in the usual three-part form, from the parts that are given; None without an event."""
    if not event:
        return None
    kind = "an opportunity" if risk_type == RiskType.opportunity else "a risk"
    text = f"there is {kind} that {event.rstrip('.')}"
    if cause:
        text = f"Because of {cause.rstrip('.')}, {text}"
    else:
        text = text[0].upper() + text[1:]
    if consequence:
        text += f", which would lead to {consequence.rstrip('.')}"
    return text + "."


class AssessmentPublic(BaseModel):
    id: int
    risk_id: int
    kind: AssessmentKind
    matrix_version: int
    inherent: ScoredRating
    residual: ScoredRating | None
    rationale: str
    assessed_by: str
    assessed_at: datetime


class RiskPublic(BaseModel):
    id: int
    reference: str
    title: str
    description: str
    type: RiskType
    cause: str
    event: str
    consequence: str
    statement: str | None = PydField(
        description="'Because of <cause>, there is a risk that <event>, which would lead to <consequence>.' "
        "(an opportunity: 'an opportunity that'), when the event is stated."
    )
    source: str
    objectives: list[str]
    category: str
    owner: str
    status: RiskStatus
    treatment: Treatment
    tags: list[str]
    matrix_version: int
    inherent: ScoredRating
    residual: ScoredRating | None
    target: Target | None
    score: int
    level: str
    outside_appetite: bool = PydField(description="The current level is above the category's appetite.")
    beyond_tolerance: bool = PydField(
        description="The current level is above the category's tolerance: escalated to an admin."
    )
    appetite_response: AppetiteResponse | None = PydField(
        description="Outside the appetite, what answers it: an acceptance in force, a target within the appetite, "
        "or none; null within the appetite."
    )
    acceptance: Acceptance | None
    controls: list[ControlPublic]
    created_at: datetime
    updated_at: datetime
    last_reviewed_at: datetime
    next_review_at: datetime
    next_review_set_by_hand: bool
    overdue: bool
    closed_at: datetime | None
    closure_reason: str | None
    materialised_at: datetime | None = PydField(description="When the risk last turned into an incident.")
    version: int
    kri_status: Literal["red", "amber", "green"] | None = PydField(
        description="The worst status of its key risk indicators (GET /risks/{id}/kris); null without one."
    )

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt
from pydantic import Field as PydField
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from riskops.clock import Moment
from riskops.clock import now as utcnow
from riskops.db import UTCDateTime
from riskops.playbooks.spec import PlaybookSpec, Severity


class PlaybookVersion(SQLModel, table=True):
    """One published version of a playbook. Never changed after publishing; retiring stops new activations."""

    __tablename__ = "playbook_version"
    __table_args__ = (UniqueConstraint("slug", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, index=True)
    version: int
    title: str = Field(max_length=200)
    spec: dict[str, Any] = Field(sa_type=JSON)
    content_hash: str = Field(max_length=64)
    source: str = Field(max_length=300, description="The file it came from, or 'api'.")
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_by: str = Field(max_length=200)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_by: str | None = Field(default=None, max_length=200)

    def parsed(self) -> PlaybookSpec:
        return PlaybookSpec.model_validate(self.spec)


class PlaybookSummary(BaseModel):
    id: str
    version: int
    title: str
    summary: str
    severity: Severity
    categories: list[str]
    rto_minutes: int
    steps: int
    communications: int
    versions: list[int]


Fit = Literal["risk", "category"]


class PlaybookListed(PlaybookSummary):
    fits: Fit | None = PydField(
        default=None,
        description="With ?risk=: 'risk' if the playbook names the risk, 'category' if it answers its category.",
    )


class PlaybookVersionPublic(BaseModel):
    id: str
    version: int
    source: str
    content_hash: str
    published_at: datetime
    published_by: str
    retired_at: datetime | None
    playbook: PlaybookSpec


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

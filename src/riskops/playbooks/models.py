from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from pydantic import Field as PydField
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.crisis import Severity
from riskops.db import UTCDateTime, primary_key
from riskops.playbooks.spec import PlaybookSpec


class PlaybookVersion(SQLModel, table=True):
    """One published version of a playbook. Never changed after publishing; retiring stops new activations."""

    __tablename__ = "playbook_version"
    __table_args__ = (UniqueConstraint("slug", "version"),)

    id: int = primary_key()
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
    rto_minutes: int | None = PydField(
        description="The playbook's own RTO; null when it takes it from the processes it restores "
        "(GET /api/v1/playbooks/{id}/objectives gives the figures an activation follows)."
    )
    processes: list[str] = PydField(description="The business processes it restores, by key or reference.")
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

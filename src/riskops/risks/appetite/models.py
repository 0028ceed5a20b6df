"""Risk appetite per category: the highest level a category's risks may stand at without a response, and the
tolerance above which an admin must be told."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime


class CategoryAppetite(SQLModel, table=True):
    """A category's own appetite; a category without one takes the matrix's. Keyed as categories match: without
    regard to case or surrounding spaces."""

    __tablename__ = "category_appetite"

    category_key: str = Field(primary_key=True, max_length=100)
    category: str = Field(max_length=100)
    appetite: str = Field(max_length=40)
    tolerance: str | None = Field(default=None, max_length=40)
    rationale: str = Field(default="", max_length=2000)
    set_by: str = Field(max_length=200)
    set_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class AppetiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appetite: str = PydField(
        min_length=1, max_length=40, description="The highest acceptable level: a level of the current matrix."
    )
    tolerance: str | None = PydField(
        default=None, min_length=1, max_length=40,
        description="The level above which a risk must be escalated to an admin and accepted only on two approvals; "
        "at or above the appetite. None: no tolerance beyond the appetite is set.",
    )  # fmt: skip
    rationale: str = PydField(default="", max_length=2000)


class AppetitePublic(BaseModel):
    category: str = PydField(description="The category as first written; '*' for the matrix's default.")
    appetite: str
    tolerance: str | None
    rationale: str
    set_by: str | None
    set_at: datetime | None
    version: int


class AppetiteList(BaseModel):
    default: AppetitePublic = PydField(description="The current matrix's appetite, for every category without one.")
    categories: list[AppetitePublic]


class AppetiteResponse(StrEnum):
    accepted = "accepted"
    target = "target"
    none = "none"


def appetite_response(
    outside: bool, target_within: bool, acceptance_expires_at: datetime | None, now: datetime
) -> AppetiteResponse | None:
    """What answers a risk above its appetite: an acceptance in force first, else a target within it."""
    if not outside:
        return None
    if acceptance_expires_at is not None and acceptance_expires_at > now:
        return AppetiteResponse.accepted
    return AppetiteResponse.target if target_within else AppetiteResponse.none

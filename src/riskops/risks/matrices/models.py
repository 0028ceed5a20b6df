from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, StrictInt, model_validator
from pydantic import Field as PydField
from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime


class ScalePoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: StrictInt = PydField(ge=1, description="The number a user enters; a scale runs 1..N.")
    name: str = PydField(min_length=1, max_length=60)
    description: str = PydField(default="", max_length=1000)
    frequency: str = PydField(
        default="", max_length=200, description="Likelihood: the frequency or probability range the level stands for."
    )


class ImpactDimension(BaseModel):
    """One kind of consequence (financial, operational, ...) with what each impact level means for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = PydField(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9-]*$")
    name: str = PydField(min_length=1, max_length=60)
    levels: list[str] = PydField(
        min_length=1, max_length=20, description="What impact 1..N means in this dimension, one text per level."
    )


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = PydField(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9-]*$")
    review_interval_days: StrictInt = PydField(ge=1, le=3660)
    color: str = PydField(default="#9e9e9e", pattern=r"^#[0-9a-fA-F]{6}$")
    description: str = PydField(default="", max_length=1000, description="What the level means and asks for.")


class MatrixSpec(BaseModel):
    """A risk matrix: scales, the levels from lowest to highest, and a level for every cell.

    `cells[l - 1][i - 1]` is the level of likelihood `l` and impact `i`; the score is `l * i`.
    `appetite` is the highest level that a non-admin may accept.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = PydField(min_length=1, max_length=100)
    description: str = ""
    likelihood: list[ScalePoint] = PydField(min_length=1, max_length=20)
    impact: list[ScalePoint] = PydField(min_length=1, max_length=20)
    levels: list[Level] = PydField(min_length=1, max_length=20)
    cells: list[list[str]]
    appetite: str
    impact_criteria: list[ImpactDimension] = PydField(
        default_factory=list, max_length=12,
        description="The dimensions an impact may be rated in; a rating's overall impact is the highest of them.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for axis in ("likelihood", "impact"):
            values = [p.value for p in getattr(self, axis)]
            if values != list(range(1, len(values) + 1)):
                raise ValueError(f"{axis} values must run 1..{len(values)} in order, got {values}")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"level names must be unique, got {names}")
        if len(self.cells) != len(self.likelihood):
            raise ValueError(
                f"cells needs one row per likelihood value ({len(self.likelihood)}), got {len(self.cells)}"
            )
        for row_no, row in enumerate(self.cells, start=1):
            if len(row) != len(self.impact):
                raise ValueError(
                    f"cells row {row_no} needs {len(self.impact)} entries (one per impact), got {len(row)}"
                )
            unknown = sorted(set(row) - set(names))
            if unknown:
                raise ValueError(f"cells row {row_no} names unknown levels {unknown}; levels are {names}")
        if self.appetite not in names:
            raise ValueError(f"appetite '{self.appetite}' is not one of the levels {names}")
        keys = [dimension.key for dimension in self.impact_criteria]
        if len(set(keys)) != len(keys):
            raise ValueError(f"impact_criteria keys must be unique, got {keys}")
        for dimension in self.impact_criteria:
            if len(dimension.levels) != len(self.impact):
                raise ValueError(
                    f"impact_criteria '{dimension.key}' needs one description per impact level ({len(self.impact)}), "
                    f"got {len(dimension.levels)}"
                )
        return self

    def level_of(self, likelihood: int, impact: int) -> str:
        return self.cells[likelihood - 1][impact - 1]

    def has_level(self, level: str) -> bool:
        return any(lv.name == level for lv in self.levels)

    def rank(self, level: str) -> int:
        return next(i for i, lv in enumerate(self.levels) if lv.name == level)

    def review_interval(self, level: str) -> timedelta:
        return timedelta(days=next(lv.review_interval_days for lv in self.levels if lv.name == level))

    def above_appetite(self, level: str) -> bool:
        return self.rank(level) > self.rank(self.appetite)


class RiskMatrix(SQLModel, table=True):
    """A published matrix version. Never changed after publishing: risks keep the version they were scored with."""

    __tablename__ = "risk_matrix"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    name: str = Field(max_length=100)
    spec: dict[str, Any] = Field(sa_type=JSON)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_by: str = Field(max_length=200)

    def parsed(self) -> MatrixSpec:
        return _parse(orjson.dumps(self.spec))


# A published version never changes, and checking a spec costs more than most requests that score with it:
# each spec is parsed once (keyed by its content, so any database's versions are told apart). Specs are frozen.
@lru_cache(maxsize=64)
def _parse(spec: bytes) -> MatrixSpec:
    return MatrixSpec.model_validate_json(spec)


class RiskMatrixPublic(SQLModel):
    version: int
    published_at: datetime
    published_by: str
    spec: MatrixSpec


class RescoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rationale: str = PydField(min_length=1, max_length=2000)


class RescoreResult(BaseModel):
    matrix_version: int
    rescored: int
    level_changes: list[dict[str, Any]]
    accepted_above_appetite: list[str] = PydField(
        default_factory=list,
        description="Accepted risks now above the appetite; their acceptances stand, as an admin adopted the matrix.",
    )

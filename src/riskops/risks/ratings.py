"""Ratings as entered and as scored: a likelihood and an impact (overall, or per dimension of the matrix's impact
criteria), and the target a treatment aims for."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StrictInt, model_validator
from pydantic import Field as PydField

from riskops.risks.fields import Day  # also, as a field is named `date`, the name of its type


def _impact_or_impacts(schema: dict[str, Any]) -> None:
    schema["required"] = ["likelihood"]
    schema["anyOf"] = [{"required": ["impact"]}, {"required": ["impacts"]}]


Impacts = dict[Annotated[str, PydField(min_length=1, max_length=40)], Annotated[StrictInt, PydField(ge=1, le=20)]]


class Rating(BaseModel):
    """A likelihood/impact pair as entered; checked against the current matrix's scales. The impact may be given
    per dimension of the matrix's impact criteria (financial, operational, ...): the overall impact is then the
    highest of them, the worst consequence deciding, as ISO 31000 practice and most matrices rate it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_impact_or_impacts)

    likelihood: StrictInt = PydField(ge=1, le=20)
    impact: StrictInt = PydField(ge=1, le=20, description="Required unless impacts are given; then their highest.")
    impacts: Impacts | None = PydField(default=None, max_length=20, description="Impact per dimension of the matrix.")

    @model_validator(mode="before")
    @classmethod
    def _impact_from_impacts(cls, data: Any) -> Any:
        if isinstance(data, dict) and "impact" not in data and isinstance(data.get("impacts"), dict):
            levels = [v for v in data["impacts"].values() if isinstance(v, int)]
            return {**data, "impact": max(levels)} if levels else data
        return data


class ScoredRating(BaseModel):
    likelihood: int
    impact: int
    score: int
    level: str
    impacts: dict[str, int] | None = None


class TargetRating(BaseModel):
    """Where the treatment should bring the risk, by when."""

    model_config = ConfigDict(extra="forbid")

    likelihood: StrictInt = PydField(ge=1, le=20)
    impact: StrictInt = PydField(ge=1, le=20)
    date: Day | None = PydField(default=None, description="When the target should be reached.")


class Target(BaseModel):
    likelihood: int
    impact: int
    score: int
    level: str
    date: Day | None = None

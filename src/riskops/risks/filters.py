"""The risk list's filters as query parameters: one declaration for GET /risks, GET /risks/export and
`riskops export --live`, so that all three accept and refuse the same values."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from riskops.risks.models import RiskStatus, Treatment
from riskops.risks.queries import RiskFilter


def _any_of(values: type[StrEnum]) -> dict[str, Any]:
    return {"items": {"type": "string", "enum": [str(v) for v in values]}}


class RiskFilterQuery(BaseModel):
    """Repeat a filter for any of several values (level=high&level=critical). An empty parameter is absent: the
    request guard drops it before routing."""

    model_config = ConfigDict(extra="forbid")

    # Strings, not enums: the service checks status, level and treatment alike and lists the allowed values.
    status: list[str] = Field(default_factory=list, json_schema_extra=_any_of(RiskStatus))
    level: list[str] = Field(default_factory=list, description="Levels of the published matrix versions.")
    treatment: list[str] = Field(default_factory=list, json_schema_extra=_any_of(Treatment))
    category: list[str] = Field(default_factory=list, description="Matched without regard to case.")
    owner: list[str] = Field(default_factory=list, description="Matched without regard to case.")
    tag: list[str] = Field(default_factory=list)
    overdue: bool | None = Field(default=None, description="Open risks whose next review date has passed.")
    outside_appetite: bool | None = Field(
        default=None, description="Risks whose level is above their category's appetite."
    )
    beyond_tolerance: bool | None = Field(
        default=None, description="Risks whose level is above their category's tolerance."
    )
    # Three characters at least: the text indexes find trigrams, and anything shorter would scan the register.
    q: str | None = Field(
        default=None, min_length=3, max_length=200, description="Text in the title or description (any case)."
    )

    def risk_filter(self) -> RiskFilter:
        """The filters alone, whatever else a subclass adds (a page's sort and cursor, an export's format)."""
        return RiskFilter(**self.model_dump(include=set(RiskFilterQuery.model_fields)))

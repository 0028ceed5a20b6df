"""The control library's tests and API shapes. The library's table itself (Control) and a control applied to a
risk (RiskControl) are the register's, in riskops.risks.models: every risk shows its controls' library fields."""

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictInt, StringConstraints
from pydantic import Field as PydField
from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key
from riskops.risks.fields import Day, Name
from riskops.risks.library import ControlNature, ControlStatus, ControlType, Effectiveness, LibraryStatus
from riskops.risks.models import RiskStatus


class ControlTestResult(StrEnum):
    effective = "effective"
    partially_effective = "partially-effective"
    ineffective = "ineffective"


class ControlTest(SQLModel, table=True):
    """One test of a library control: append-only, it is evidence (the database refuses UPDATE and DELETE)."""

    __tablename__ = "control_test"
    __table_args__ = (Index("ix_control_test_control_id_tested_on", "control_id", "tested_on", "id"),)

    id: int = primary_key()
    control_id: int = Field(foreign_key="control.id")
    tested_on: date
    tester: str = Field(max_length=200)
    result: ControlTestResult = Field(sa_type=String(24))
    evidence_url: str = Field(max_length=2000)
    notes: str = Field(default="", sa_type=Text)
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---- inputs ----

# A word of a framework's name or a clause id: "ISO/IEC", "27001:2022", "A.5.15", "SP", "800-53", "AC-2(1)".
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9/:.()\-]*")


def _framework_reference(value: str) -> str:
    """A framework and a clause id, words alone (the standard's text is not ours to store), spaces collapsed."""
    words = value.split()
    if not 2 <= len(words) <= 8 or not all(_WORD.fullmatch(w) for w in words) or not re.search(r"\d", words[-1]):
        raise ValueError(
            "a framework and a clause id, such as 'ISO/IEC 27001:2022 A.5.15' or 'NIST SP 800-53 AC-2' (ids only)"
        )
    return " ".join(words)


FrameworkReference = Annotated[str, PydField(min_length=3, max_length=100), AfterValidator(_framework_reference)]


def _distinct(references: list[str]) -> list[str]:
    return list(dict.fromkeys(references))


FrameworkReferences = Annotated[list[FrameworkReference], PydField(max_length=30), AfterValidator(_distinct)]


def _evidence_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("an http or https URL")
    return value


EvidenceUrl = Annotated[str, PydField(min_length=8, max_length=2000), AfterValidator(_evidence_url)]
IntervalDays = Annotated[StrictInt, PydField(ge=1, le=3660, description="Days from one test to the next one due.")]


class LibraryControlCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = PydField(min_length=1, max_length=200)
    description: str = PydField(default="", max_length=20000)
    type: ControlType = ControlType.preventive
    nature: ControlNature = ControlNature.manual
    owner: Name = PydField(min_length=1, max_length=200)
    framework_references: FrameworkReferences = PydField(
        default_factory=list, description="Clause ids, e.g. 'ISO/IEC 27001:2022 A.5.15', 'NIST SP 800-53 AC-2'."
    )
    test_interval_days: IntervalDays | None = None
    next_test_due: Day | None = PydField(
        default=None, description="Set by hand; otherwise today plus the test interval (none without one)."
    )


class LibraryControlUpdate(BaseModel):
    """Any of the fields; `status` retires a control (applied to no new risk, tested no more) or reactivates it.
    A new interval without a date moves the next test to the last test (or today) plus the interval."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = PydField(default=None, min_length=1, max_length=200)
    description: str | None = PydField(default=None, max_length=20000)
    type: ControlType | None = None
    nature: ControlNature | None = None
    owner: Name | None = PydField(default=None, min_length=1, max_length=200)
    framework_references: FrameworkReferences | None = None
    test_interval_days: IntervalDays | None = None
    next_test_due: Day | None = None
    status: LibraryStatus | None = None


class ControlTestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tested_on: Day = PydField(description="The day of the test: today (in any time zone) or before.")
    tester: Name = PydField(min_length=1, max_length=200)
    result: ControlTestResult
    evidence_url: EvidenceUrl = PydField(description="Where the evidence of the test is kept (http or https).")
    notes: str = PydField(default="", max_length=5000)


Owner = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ControlQuery(BaseModel):
    """Repeat a filter for any of several values (effectiveness=ineffective&effectiveness=partially-effective)."""

    model_config = ConfigDict(extra="forbid")

    effectiveness: list[Effectiveness] = PydField(default_factory=list, max_length=4)
    type: list[ControlType] = PydField(default_factory=list, max_length=3)
    owner: list[Owner] = PydField(default_factory=list, max_length=50, description="Matched without regard to case.")
    status: list[LibraryStatus] = PydField(default_factory=list, max_length=2)
    due: bool | None = PydField(
        default=None, description="true: active controls whose next test is due today or earlier; false: the others."
    )
    cursor: str | None = PydField(default=None, max_length=500)
    limit: int = PydField(default=50, ge=1, le=500)


# ---- answers ----


class LinkedRisk(BaseModel):
    """A risk a control is applied to, and how far the control's implementation on it has come."""

    id: int
    reference: str
    title: str
    status: RiskStatus
    level: str
    application_id: int = PydField(description="The control's `id` in the risk's `controls`.")
    implementation: ControlStatus
    due_date: date | None


class LibraryControlPublic(BaseModel):
    id: int
    reference: str
    title: str
    description: str
    type: ControlType
    nature: ControlNature
    owner: str
    framework_references: list[str]
    test_interval_days: int | None
    next_test_due: date | None
    due_for_testing: bool = PydField(description="Active, and its next test is due today or earlier.")
    last_tested_on: date | None
    effectiveness: Effectiveness = PydField(description="The result of its latest test (by date), or untested.")
    status: LibraryStatus
    version: int
    created_at: datetime
    updated_at: datetime
    risks: list[LinkedRisk] = PydField(description="The risks it is applied to, open and closed, by reference.")


class ControlTestPublic(BaseModel):
    id: int
    control_id: int
    control_reference: str
    tested_on: date
    tester: str
    result: ControlTestResult
    evidence_url: str
    notes: str
    recorded_by: str
    recorded_at: datetime

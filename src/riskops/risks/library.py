"""The control library's table, in the register's package: every risk shows its controls' library fields, and the
register makes a library control where a risk is given a new one; and the shapes of a control applied to a risk.
The library's rules live in riskops.controls."""

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError, model_validator
from pydantic import Field as PydField
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import JSON, Index, String, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key
from riskops.risks.fields import Day


class ControlStatus(StrEnum):
    """How far a control's implementation on one risk has come."""

    planned = "planned"
    in_progress = "in-progress"
    implemented = "implemented"


class ControlType(StrEnum):
    preventive = "preventive"
    detective = "detective"
    corrective = "corrective"


class ControlNature(StrEnum):
    manual = "manual"
    automated = "automated"


class Effectiveness(StrEnum):
    """A library control's last test result, or untested."""

    untested = "untested"
    effective = "effective"
    partially_effective = "partially-effective"
    ineffective = "ineffective"


class LibraryStatus(StrEnum):
    active = "active"
    retired = "retired"  # kept with its tests and applications, applied to no new risk and tested no more


def control_reference(control_id: int) -> str:
    """The human reference of a library control (C-0007)."""
    return f"C-{control_id:04d}"


class Control(SQLModel, table=True):
    """A control of the library, defined once and applied to any number of risks (RiskControl)."""

    __table_args__ = (
        Index("ix_control_effectiveness_id", "effectiveness", "id"),
        Index("ix_control_next_test_due", "next_test_due"),
        # A deleted control's id (and reference, and history) is never given to another, on SQLite either.
        {"sqlite_autoincrement": True},
    )

    id: int = primary_key()
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    type: ControlType = Field(default=ControlType.preventive, sa_type=String(16))
    nature: ControlNature = Field(default=ControlNature.manual, sa_type=String(16))
    owner: str = Field(max_length=200)
    # Clause ids only ("ISO/IEC 27001:2022 A.5.15"): the standards' text is theirs, not ours to store.
    framework_references: list[str] = Field(default_factory=list, sa_type=JSON)
    test_interval_days: int | None = None
    next_test_due: date | None = None
    last_tested_on: date | None = None
    effectiveness: Effectiveness = Field(default=Effectiveness.untested, sa_type=String(24))
    status: LibraryStatus = Field(default=LibraryStatus.active, sa_type=String(16))
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def reference(self) -> str:
        return control_reference(self.id)


class ControlCreate(BaseModel):
    """Apply a library control to the risk (control_id), or a new one made from a title and an owner."""

    model_config = ConfigDict(extra="forbid")

    control_id: StrictInt | None = PydField(default=None, ge=1, description="A library control to apply.")
    title: str | None = PydField(default=None, min_length=1, max_length=200, description="A new library control's.")
    owner: str | None = PydField(default=None, min_length=1, max_length=200, description="A new library control's.")
    status: ControlStatus = ControlStatus.planned
    due_date: Day | None = None

    @model_validator(mode="after")
    def _one_control(self) -> "ControlCreate":
        if self.control_id is not None:
            if self.title is not None or self.owner is not None:
                raise _invalid("ControlCreate", ["control_id"], "value_error", "give control_id, or title and owner")
        elif missing := [name for name in ("title", "owner") if getattr(self, name) is None]:
            raise _invalid("ControlCreate", missing, "missing", "Field required")
        return self


def _invalid(model: str, fields: list[str], kind: str, message: str) -> ValidationError:
    """Fields' errors from a whole-model check, located at each field as pydantic locates its own."""
    details = [InitErrorDetails(type=PydanticCustomError(kind, message), loc=(f,), input=None) for f in fields]
    return ValidationError.from_exception_data(model, details)


class ControlUpdate(BaseModel):
    """The control on this risk: its status and due date; title and owner are the library control's, for every
    risk it is applied to."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = PydField(default=None, min_length=1, max_length=200)
    owner: str | None = PydField(default=None, min_length=1, max_length=200)
    status: ControlStatus | None = None
    due_date: Day | None = None


class ControlPublic(BaseModel):
    """A library control as applied to a risk: `id` is the application's, `status` and `due_date` its own."""

    id: int
    control_id: int
    control_reference: str
    title: str
    owner: str
    type: ControlType
    effectiveness: Effectiveness
    status: ControlStatus
    due_date: date | None
    created_at: datetime
    updated_at: datetime

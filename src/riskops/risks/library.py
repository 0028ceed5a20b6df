"""The control library's table, in the register's package: every risk shows its controls' library fields, and the
register makes a library control where a risk is given a new one. The library's rules live in riskops.controls."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Index, String, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.db import UTCDateTime, primary_key


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

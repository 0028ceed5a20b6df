"""Business processes (with their business impact analysis), assets in a hierarchy, what each depends on, and
the risks linked to them: the tables and the API's shapes."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StrictInt
from pydantic import Field as PydField
from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.continuity.durations import MAX_MINUTES, minutes, schema
from riskops.db import UTCDateTime, primary_key
from riskops.risks.fields import Name


class Criticality(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class Standing(StrEnum):
    """Archived: kept, with its links and history, but no longer linked anew nor edited until restored."""

    active = "active"
    archived = "archived"


class AssetKind(StrEnum):
    information = "information"
    system = "system"
    site = "site"
    people = "people"
    supplier = "supplier"


class Classification(StrEnum):
    public = "public"
    internal = "internal"
    confidential = "confidential"
    restricted = "restricted"


class Dimension(StrEnum):
    """The impact dimensions a business impact analysis rates over time."""

    financial = "financial"
    operational = "operational"
    legal = "legal"
    reputation = "reputation"
    health_safety = "health-safety"


def process_reference(process_id: int) -> str:
    return f"P-{process_id:04d}"


def asset_reference(asset_id: int) -> str:
    return f"A-{asset_id:04d}"


# ---- tables ----


class BusinessProcess(SQLModel, table=True):
    __tablename__ = "business_process"

    id: int = primary_key()
    key: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    owner: str = Field(max_length=200)
    criticality: Criticality = Field(sa_type=String(16))
    rto_minutes: int | None = None
    rpo_minutes: int | None = None
    mtpd_minutes: int | None = None
    minimum_service_level: str | None = Field(default=None, sa_type=Text)
    # [{"after_minutes": 240, "dimension": "financial", "level": 3}, ...] by time, then dimension
    impact_over_time: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    status: Standing = Field(default=Standing.active, sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 1

    @property
    def reference(self) -> str:
        return process_reference(self.id)


class Asset(SQLModel, table=True):
    id: int = primary_key()
    key: str = Field(max_length=64, unique=True)
    kind: AssetKind = Field(sa_type=String(16))
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    owner: str = Field(max_length=200)
    classification: Classification = Field(sa_type=String(16))
    # The asset it is part of (a system at a site, a dataset in a system): what threatens the parent threatens it.
    parent_id: int | None = Field(default=None, foreign_key="asset.id", index=True)
    status: Standing = Field(default=Standing.active, sa_type=String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    archived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = 1

    @property
    def reference(self) -> str:
        return asset_reference(self.id)


def _pair(table: str) -> Any:
    """One side of a link table's primary key, a foreign key to `table`."""
    return Field(sa_column=Column(Integer, ForeignKey(f"{table}.id"), primary_key=True))


def _indexed_pair(table: str) -> Any:
    """The other side, indexed too: the links are read from both ends."""
    return Field(sa_column=Column(Integer, ForeignKey(f"{table}.id"), primary_key=True, index=True))


class ProcessDependency(SQLModel, table=True):
    """A process that cannot run without another."""

    __tablename__ = "process_dependency"

    process_id: int = _pair("business_process")
    depends_on_id: int = _indexed_pair("business_process")


class ProcessAsset(SQLModel, table=True):
    """A process that cannot run without an asset (a supplier among them)."""

    __tablename__ = "process_asset"

    process_id: int = _pair("business_process")
    asset_id: int = _indexed_pair("asset")


class RiskProcess(SQLModel, table=True):
    __tablename__ = "risk_process"

    risk_id: int = _pair("risk")
    process_id: int = _indexed_pair("business_process")
    linked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    linked_by: str = Field(max_length=200)


class RiskAsset(SQLModel, table=True):
    __tablename__ = "risk_asset"

    risk_id: int = _pair("risk")
    asset_id: int = _indexed_pair("asset")
    linked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    linked_by: str = Field(max_length=200)


# ---- API shapes: what a client sends ----

KEY = r"^[a-z][a-z0-9-]{1,62}$"
_LIKE_A_REFERENCE = re.compile(r"^[a-z]-[0-9]+$")


def _not_a_reference(key: str) -> str:
    if _LIKE_A_REFERENCE.match(key):
        raise ValueError("must not look like a reference (p-0001): a path could not tell the two apart")
    return key


Key = Annotated[
    str,
    PydField(pattern=KEY, min_length=2, max_length=63, description="Stable, unique, lower case: payroll, fra-dc."),
    AfterValidator(_not_a_reference),
]
# Another process or an asset, by reference (P-0001, A-0001) or key.
Ref = Annotated[str, PydField(min_length=1, max_length=70)]
Description = Annotated[str, PydField(max_length=20000)]
Owner = Annotated[Name, PydField(min_length=1, max_length=200)]
Title = Annotated[Name, PydField(min_length=1, max_length=200)]
ServiceLevel = Annotated[str, PydField(min_length=1, max_length=2000)]
MAX_POINTS, MAX_DEPENDENCIES, MAX_LINKS = 60, 100, 100


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImpactPoint(_In):
    after: Annotated[
        StrictInt, BeforeValidator(minutes), PydField(ge=0, le=MAX_MINUTES), schema(0, "How long into the disruption")
    ]
    dimension: Dimension
    level: StrictInt = PydField(ge=1, le=5, description="1 (negligible) to 5 (severe).")


class DependsOn(_In):
    processes: list[Ref] = PydField(default_factory=list, max_length=MAX_DEPENDENCIES)
    assets: list[Ref] = PydField(default_factory=list, max_length=MAX_DEPENDENCIES, description="Not suppliers.")
    suppliers: list[Ref] = PydField(
        default_factory=list, max_length=MAX_DEPENDENCIES, description="Assets of kind supplier."
    )


Rto = Annotated[
    StrictInt, BeforeValidator(minutes), PydField(ge=1, le=MAX_MINUTES),
    schema(1, "Recovery time objective: back in service within this long of the disruption"),
]  # fmt: skip
Rpo = Annotated[
    StrictInt, BeforeValidator(minutes), PydField(ge=0, le=MAX_MINUTES),
    schema(0, "Recovery point objective: the data loss tolerated"),
]  # fmt: skip
Mtpd = Annotated[
    StrictInt, BeforeValidator(minutes), PydField(ge=1, le=MAX_MINUTES),
    schema(1, "Maximum tolerable period of disruption; not shorter than the RTO"),
]  # fmt: skip
IMPACT_HELP = "The impact of a disruption as it lasts: per dimension, points in ascending time whose level never falls."


class ProcessCreate(_In):
    key: Key
    name: Title
    description: Description = ""
    owner: Owner
    criticality: Criticality = Criticality.medium
    rto_minutes: Rto | None = None
    rpo_minutes: Rpo | None = None
    mtpd_minutes: Mtpd | None = None
    minimum_service_level: ServiceLevel | None = None
    impact_over_time: list[ImpactPoint] = PydField(default_factory=list, max_length=MAX_POINTS, description=IMPACT_HELP)
    depends_on: DependsOn = PydField(default_factory=DependsOn)


class ProcessUpdate(_In):
    """The fields to change; null clears an optional one. The key stays: playbooks name processes by it."""

    name: Title | None = None
    description: Description | None = None
    owner: Owner | None = None
    criticality: Criticality | None = None
    rto_minutes: Rto | None = None
    rpo_minutes: Rpo | None = None
    mtpd_minutes: Mtpd | None = None
    minimum_service_level: ServiceLevel | None = None
    impact_over_time: list[ImpactPoint] | None = PydField(default=None, max_length=MAX_POINTS)
    depends_on: DependsOn | None = PydField(
        default=None, description="Replaces what the process depends on: a list left out becomes empty."
    )


class AssetCreate(_In):
    key: Key
    kind: AssetKind
    name: Title
    description: Description = ""
    owner: Owner
    classification: Classification = Classification.internal
    parent: Ref | None = PydField(default=None, description="The asset it is part of, by reference or key.")


class AssetUpdate(_In):
    """The fields to change; `parent: null` makes it a top-level asset. The key stays."""

    kind: AssetKind | None = None
    name: Title | None = None
    description: Description | None = None
    owner: Owner | None = None
    classification: Classification | None = None
    parent: Ref | None = None


class ProcessLinks(_In):
    processes: list[Ref] = PydField(max_length=MAX_LINKS)


class ProcessLink(_In):
    process: Ref


class AssetLinks(_In):
    assets: list[Ref] = PydField(max_length=MAX_LINKS)


class AssetLink(_In):
    asset: Ref


# ---- API shapes: what the service answers ----


class ProcessRef(BaseModel):
    reference: str
    key: str
    name: str
    status: Standing


class AssetRef(ProcessRef):
    kind: AssetKind


class ImpactPointPublic(BaseModel):
    after: str = PydField(description="As people write it: 4h, 1d, 1w.")
    after_minutes: int
    dimension: Dimension
    level: int


class DependenciesPublic(BaseModel):
    processes: list[ProcessRef]
    assets: list[AssetRef]
    suppliers: list[AssetRef]


class ProcessPublic(BaseModel):
    id: int
    reference: str
    key: str
    name: str
    description: str
    owner: str
    criticality: Criticality
    status: Standing
    rto_minutes: int | None
    rpo_minutes: int | None
    mtpd_minutes: int | None
    minimum_service_level: str | None
    impact_over_time: list[ImpactPointPublic]
    depends_on: DependenciesPublic
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    version: int


class AssetPublic(BaseModel):
    id: int
    reference: str
    key: str
    kind: AssetKind
    name: str
    description: str
    owner: str
    classification: Classification
    parent: AssetRef | None
    status: Standing
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    version: int


class LinkedProcesses(BaseModel):
    risk: str
    processes: list[ProcessRef]


class LinkedAssets(BaseModel):
    risk: str
    assets: list[AssetRef]

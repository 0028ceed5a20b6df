from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool
from pydantic import Field as PydField
from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from riskops.clock import now as utcnow
from riskops.crisis import Severity
from riskops.db import UTCDateTime, primary_key


class IntegrationKind(StrEnum):
    alertmanager = "alertmanager"
    pagerduty = "pagerduty-events-v2"
    generic = "generic"


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = PydField(min_length=1, max_length=100, description="A label, or a field such as severity or source.")
    op: Literal["=", "!=", "=~"] = "="
    value: str = PydField(max_length=500)


class Route(BaseModel):
    """What an alert that matches opens: linked risks, a playbook (or none), a severity, whether to page."""

    model_config = ConfigDict(extra="forbid")

    matchers: list[Matcher] = PydField(default_factory=list, description="All must hold; none means: everything.")
    risks: list[str] = PydField(default_factory=list, description="Risk ids or references to link.")
    playbook: str | None = None
    severity: Severity | None = PydField(default=None, description="Default: the playbook's, else from the alert.")
    page: StrictBool = PydField(default=True, description="Start escalation; false declares the incident acknowledged.")


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PydField(min_length=1, max_length=100)
    kind: IntegrationKind
    routes: list[Route] = PydField(default_factory=list, max_length=100, description="Evaluated in order.")
    default_route: Route = PydField(default_factory=Route, description="For an alert no route matches.")


class Integration(SQLModel, table=True):
    id: int = primary_key()
    name: str = Field(max_length=100)
    kind: IntegrationKind = Field(sa_type=String(32))
    # The token is the sender's credential: only its hash is kept, like an API key's.
    token_hash: str = Field(max_length=64, unique=True)
    token_prefix: str = Field(max_length=16)
    # Generic senders may sign with Standard Webhooks instead; the key must be kept to check signatures.
    signing_secret: str | None = Field(default=None, max_length=200)
    routes: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    default_route: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=200)


class IntegrationPublic(BaseModel):
    id: int
    name: str
    kind: IntegrationKind
    token_prefix: str
    routes: list[Route]
    default_route: Route
    created_at: datetime
    endpoint: str


class IntegrationCreated(IntegrationPublic):
    token: str = PydField(description="Put it in the sender's URL (?token=) or Authorization header. Shown once.")
    signing_secret: str | None = PydField(
        default=None, description="Generic only: a Standard Webhooks key. Shown once."
    )


class AlertGroup(SQLModel, table=True):
    """One alert source (an Alertmanager group, a PagerDuty dedup key) and the incident it opened.

    At most one open group per key: a partial unique index makes a burst or a retry attach to it.
    """

    __tablename__ = "alert_group"
    __table_args__ = (
        Index(
            "uq_alert_group_open",
            "integration_id",
            "key",
            unique=True,
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),  # fmt: skip
        # The latest group of a key, open or not: a re-firing soon after a resolution reopens its incident.
        Index("ix_alert_group_key_id", "integration_id", "key", "id"),
    )

    id: int = primary_key()
    integration_id: int = Field(foreign_key="integration.id")
    key: str = Field(max_length=300)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertInstance(SQLModel, table=True):
    """One alert within a source, by fingerprint and start: firing or resolved, whatever order the news came in."""

    __tablename__ = "alert_instance"
    __table_args__ = (UniqueConstraint("integration_id", "fingerprint", "starts_at"),)

    id: int = primary_key()
    integration_id: int = Field(foreign_key="integration.id")
    group_key: str = Field(max_length=300, index=True)
    fingerprint: str = Field(max_length=200)
    starts_at: str = Field(max_length=40)
    status: str = Field(sa_type=String(16))
    labels: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReceivedAlert(SQLModel, table=True):
    """Every body received, as received but with its credentials masked, with what became of it."""

    __tablename__ = "received_alert"

    id: int = primary_key()
    integration_id: int = Field(foreign_key="integration.id", index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    outcome: str = Field(max_length=32)  # opened, attached, reopened, resolved, acknowledged, ignored, rejected
    detail: str = Field(default="", max_length=500)
    dedup_key: str | None = Field(default=None, max_length=300)
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    body: str = Field(sa_type=Text)


class ReceivedAlertPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    integration_id: int
    received_at: datetime
    outcome: str
    detail: str
    dedup_key: str | None
    incident_id: int | None
    body: str


# ---- the formats senders speak ----


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = PydField(default_factory=dict)
    startsAt: str  # noqa: N815 (Alertmanager's field names)
    endsAt: str = ""  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = ""


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook receiver body, version 4; unknown fields (truncatedAlerts, ...) are tolerated."""

    model_config = ConfigDict(extra="allow")

    version: str
    groupKey: str  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = PydField(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = PydField(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[str, str] = PydField(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    alerts: list[AlertmanagerAlert] = PydField(min_length=1)


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    summary: str = PydField(min_length=1, max_length=1024)
    source: str = PydField(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: str | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = PydField(default=None, alias="class")
    custom_details: Any = None


class PagerDutyEvent(BaseModel):
    """PagerDuty Events API v2 (enqueue). `payload` is required for trigger only."""

    model_config = ConfigDict(extra="allow")

    routing_key: str = PydField(min_length=1)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = PydField(default=None, max_length=255)
    payload: PagerDutyPayload | None = None
    links: list[dict[str, Any]] = PydField(default_factory=list)
    images: list[dict[str, Any]] = PydField(default_factory=list)
    client: str | None = None
    client_url: str | None = None


class GenericAlert(BaseModel):
    """riskops' own shape for anything else."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["trigger", "acknowledge", "resolve"] = "trigger"
    dedup_key: str = PydField(min_length=1, max_length=255)
    title: str | None = PydField(default=None, max_length=200, description="Required to trigger.")
    severity: Severity | None = None
    labels: dict[str, str] = PydField(default_factory=dict)
    details: str = PydField(default="", max_length=20000)

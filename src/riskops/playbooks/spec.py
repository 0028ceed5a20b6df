"""What a playbook file says: the published JSON Schema is generated from these models."""

import re
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from riskops.crisis import Audience, Severity

SLUG = r"^[a-z0-9][a-z0-9-]{1,62}$"
# The recovery objectives a playbook sets, or takes from the processes it restores.
OBJECTIVES = ("rto_minutes", "rpo_minutes", "mtpd_minutes")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Answers(_Strict):
    """Which risks this playbook answers: by category and/or by risk reference (R-0042)."""

    categories: list[str] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)


class Dependencies(_Strict):
    services: list[str] = Field(default_factory=list)
    suppliers: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)


def _at_default(value: object) -> bool:
    """Fields added after playbooks were first published are left out of a dump at their default, so that
    unchanged content keeps its content hash (and is no new version)."""
    return value is False or value is None or value == [] or value == "declaration"


_FROM_PROCESSES = " Leave it out to take the strictest of the processes the playbook restores (`processes`)."


class BusinessImpact(_Strict):
    rto_minutes: StrictInt | None = Field(
        default=None, ge=1, exclude_if=_at_default,
        description="Recovery time objective: service back within this many minutes of the declaration."
        + _FROM_PROCESSES,
    )  # fmt: skip
    rpo_minutes: StrictInt | None = Field(
        default=None, ge=0, exclude_if=_at_default,
        description="Recovery point objective: data loss tolerated, in minutes." + _FROM_PROCESSES,
    )  # fmt: skip
    mtpd_minutes: StrictInt | None = Field(
        default=None, ge=1, exclude_if=_at_default,
        description="Maximum tolerable period of disruption, in minutes from the declaration: watched like the RTO."
        + _FROM_PROCESSES,
    )  # fmt: skip
    depends_on: Dependencies = Field(default_factory=Dependencies)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.rto_minutes is not None and self.mtpd_minutes is not None and self.rto_minutes > self.mtpd_minutes:
            raise ValueError(
                "rto_minutes must not exceed mtpd_minutes: recovery must come before disruption is intolerable"
            )
        return self


# A process the playbook restores: its key (payroll) or its reference (P-0001).
PROCESS_NAME = r"^(?:[a-z][a-z0-9-]{1,62}|P-[0-9]{4,12})$"
MAX_PROCESSES = 20


DueFrom = Literal["declaration", "detection"]
DUE_FROM = (
    "What due_minutes counts from: 'declaration' (the activation; the default) or 'detection' (the incident's "
    "detected_at, when the organisation became aware), for deadlines the law counts from awareness such as GDPR "
    "Art. 33's 72 hours. The RTO and the MTPD are always counted from the declaration."
)


class Role(_Strict):
    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=100)
    instructions: str = Field(min_length=1)
    required: StrictBool = True


class Step(_Strict):
    id: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    instructions: str = Field(min_length=1)
    role: str = Field(description="The id of the role that owns the step.")
    due_minutes: StrictInt = Field(
        ge=0, description="Deadline, in minutes after activation (or detection, see due_from)."
    )
    due_from: DueFrom = Field(default="declaration", exclude_if=_at_default, description=DUE_FROM)
    depends_on: list[str] = Field(default_factory=list, description="Step ids that must be done first.")
    optional: StrictBool = Field(
        default=False, exclude_if=_at_default,
        description="An optional step may still be pending when the incident closes; a required one must be done "
        "or skipped first.",
    )  # fmt: skip


class Communication(_Strict):
    id: str = Field(pattern=SLUG)
    audience: Audience
    title: str = Field(min_length=1, max_length=200)
    role: str = Field(description="The id of the role that sends it.")
    channel: str = Field(min_length=1, max_length=100, description="e.g. email, status page, regulator portal.")
    due_minutes: StrictInt = Field(
        ge=0, description="Deadline, in minutes after activation (or detection, see due_from)."
    )
    due_from: DueFrom = Field(default="declaration", exclude_if=_at_default, description=DUE_FROM)
    template: str = Field(
        min_length=1,
        description="Message text; {incident_title}, {incident_ref}, {declared_at}, {detected_at} are filled in.",
    )
    optional: StrictBool = Field(
        default=False, exclude_if=_at_default,
        description="An optional message (sent only in some cases) may stay unsent when the incident closes; a "
        "required one must be sent first.",
    )  # fmt: skip


class PlaybookSpec(_Strict):
    id: str = Field(pattern=SLUG, description="Slug, stable across versions.")
    version: StrictInt = Field(ge=1, description="Bump it whenever the content changes.")
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1)
    answers: Answers = Field(default_factory=Answers)
    processes: list[Annotated[str, Field(pattern=PROCESS_NAME, max_length=70)]] = Field(
        default_factory=list, max_length=MAX_PROCESSES, exclude_if=_at_default,
        description="The business processes this playbook restores, by key (payroll) or reference (P-0001). The "
        "RTO, RPO and MTPD that business_impact leaves out are the strictest of theirs, resolved when the playbook "
        "is activated; one it sets that differs from a process's is kept, with a warning "
        "(GET /api/v1/playbooks/{id}/objectives).",
    )  # fmt: skip
    severity: Severity
    escalation_policy: str | None = Field(default=None, description="Name of the escalation policy to use.")
    business_impact: BusinessImpact = Field(
        default_factory=BusinessImpact, validate_default=True,
        description="Its RTO, RPO and MTPD are required unless `processes` names the processes it restores.",
    )  # fmt: skip
    roles: list[Role] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)
    communications: list[Communication] = Field(default_factory=list)

    @field_validator("processes")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"named more than once: {duplicates}")
        return names

    @field_validator("business_impact")
    @classmethod
    def _objectives_known(cls, impact: BusinessImpact, info: ValidationInfo) -> BusinessImpact:
        if "processes" not in info.data or info.data["processes"]:
            return impact  # taken from the processes (or `processes` itself is wrong, and says so)
        missing = [name for name in OBJECTIVES if getattr(impact, name) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)} required unless `processes` names the processes it restores")
        return impact

    @model_validator(mode="after")
    def _references(self) -> Self:
        for kind, items in (("roles", self.roles), ("steps", self.steps), ("communications", self.communications)):
            ids = [item.id for item in items]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"{kind}: duplicate ids {duplicates}")
        roles = {r.id for r in self.roles}
        steps = {s.id: s for s in self.steps}
        for i, step in enumerate(self.steps):
            if step.role not in roles:
                raise ValueError(f"steps[{i}] ({step.id}).role: unknown role '{step.role}'; roles are {sorted(roles)}")
            for dep in step.depends_on:
                if dep not in steps:
                    raise ValueError(f"steps[{i}] ({step.id}).depends_on: unknown step '{dep}'")
        for i, message in enumerate(self.communications):
            if message.role not in roles:
                raise ValueError(f"communications[{i}] ({message.id}).role: unknown role '{message.role}'")
        cycle = _find_cycle({s.id: s.depends_on for s in self.steps})
        if cycle:
            raise ValueError(f"steps: dependency cycle {' -> '.join(cycle)}")
        for ref in self.answers.risks:
            if not re.match(r"^R-\d{4,}$", ref):
                raise ValueError(f"answers.risks: '{ref}' is not a risk reference like R-0042")
        return self


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None

"""What a playbook file says: the published JSON Schema is generated from these models."""

import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from riskops.crisis import Audience, Severity

SLUG = r"^[a-z0-9][a-z0-9-]{1,62}$"


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


class BusinessImpact(_Strict):
    rto_minutes: StrictInt = Field(
        ge=1, description="Recovery time objective: service back within this many minutes of the declaration."
    )
    rpo_minutes: StrictInt = Field(ge=0, description="Recovery point objective: data loss tolerated, in minutes.")
    mtpd_minutes: StrictInt = Field(
        ge=1,
        description="Maximum tolerable period of disruption, in minutes from the declaration: watched like the RTO.",
    )
    depends_on: Dependencies = Field(default_factory=Dependencies)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.rto_minutes > self.mtpd_minutes:
            raise ValueError(
                "rto_minutes must not exceed mtpd_minutes: recovery must come before disruption is intolerable"
            )
        return self


DueFrom = Literal["declaration", "detection"]
DUE_FROM = (
    "What due_minutes counts from: 'declaration' (the activation; the default) or 'detection' (the incident's "
    "detected_at, when the organisation became aware), for deadlines the law counts from awareness such as GDPR "
    "Art. 33's 72 hours. The RTO and the MTPD are always counted from the declaration."
)


def _at_default(value: object) -> bool:
    """Fields added after playbooks were first published are left out of a dump at their default, so that
    unchanged content keeps its content hash (and is no new version)."""
    return value is False or value == "declaration"


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
    severity: Severity
    escalation_policy: str | None = Field(default=None, description="Name of the escalation policy to use.")
    business_impact: BusinessImpact
    roles: list[Role] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)
    communications: list[Communication] = Field(default_factory=list)

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

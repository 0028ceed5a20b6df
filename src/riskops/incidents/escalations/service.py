"""Escalation policies, and the escalation notices an incident gets from its policy."""

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.errors import NotFound, Unprocessable, field_error
from riskops.events.models import WebhookSubscription
from riskops.incidents.escalations.models import DEFAULT_POLICY, EscalationLevel, EscalationPolicy, PolicySpec
from riskops.notices import service as scheduler

ESCALATION = "incident.escalation"
# Used until an operator publishes a policy named "default": three levels, to whoever subscribes.
BUILTIN_DEFAULT = PolicySpec(
    name=DEFAULT_POLICY,
    description="Escalate to incident.escalated subscribers after 5, 15 and 30 minutes without acknowledgement.",
    levels=[EscalationLevel(wait_minutes=5), EscalationLevel(wait_minutes=10), EscalationLevel(wait_minutes=15)],
)


def save(session: Session, spec: PolicySpec, who: Principal) -> EscalationPolicy:
    """Create a policy, or replace the one with that name (incidents keep the notices already planned)."""
    known = set(session.exec(select(WebhookSubscription.id)))
    for i, level in enumerate(spec.levels):
        unknown = sorted(set(level.webhooks) - known)
        if unknown:
            raise Unprocessable(
                f"Level {i + 1} names webhook subscriptions that do not exist: {unknown}.",
                errors=[field_error(("body", "levels", i, "webhooks"), "unknown subscription")],
            )
    policy = session.exec(select(EscalationPolicy).where(EscalationPolicy.name == spec.name)).first()
    action = "updated" if policy else "created"
    policy = policy or EscalationPolicy(name=spec.name, spec={})
    old = policy.spec or None
    policy.spec, policy.updated_at = spec.model_dump(mode="json"), utcnow()
    session.add(policy)
    session.flush()
    audit.service.record(
        session, entity_type="escalation_policy", entity_id=spec.name, action=action, actor=who.name,
        changes={"spec": {"old": old, "new": policy.spec}},
    )  # fmt: skip
    return policy


def get(session: Session, name: str) -> EscalationPolicy:
    policy = session.exec(select(EscalationPolicy).where(EscalationPolicy.name == name)).first()
    if policy is None:
        raise NotFound(f"Escalation policy '{name}' does not exist.")
    return policy


def list_policies(session: Session) -> list[EscalationPolicy]:
    return list(session.exec(select(EscalationPolicy).order_by(col(EscalationPolicy.name))))


def resolve(session: Session, name: str | None) -> PolicySpec:
    """The named policy, else the operator's 'default', else the built-in default: an incident always escalates."""
    for candidate in (name, DEFAULT_POLICY):
        if candidate is not None:
            policy = session.exec(select(EscalationPolicy).where(EscalationPolicy.name == candidate)).first()
            if policy is not None:
                return policy.parsed()
    return BUILTIN_DEFAULT


def level_notices(
    kind: str, subject: str, subject_id: int, start: datetime, policy: PolicySpec, *, episode: str = ""
) -> list[dict[str, Any]]:
    """One notice per level and round, due at `start` (an incident's declaration, a KRI turning red) plus the waits
    so far; `episode` starts each one's key, so that a subject escalated again gets notices of its own."""
    due, planned = start, []
    for round_no in range(policy.repeat + 1):
        for i, level in enumerate(policy.levels):
            due += timedelta(minutes=level.wait_minutes)
            data = {
                "policy": policy.name, "level": i + 1, "round": round_no + 1,
                "webhooks": level.webhooks, "emails": level.emails,
            }  # fmt: skip
            planned.append(scheduler.notice(kind, subject, subject_id, f"{episode}{round_no}.{i}", due, data))
    return planned


def all_targets(policy: PolicySpec) -> tuple[set[int], set[str]]:
    """Every level's webhooks and e-mail addresses: who hears of an imminent recovery-time breach."""
    return {w for lv in policy.levels for w in lv.webhooks}, {str(e) for lv in policy.levels for e in lv.emails}

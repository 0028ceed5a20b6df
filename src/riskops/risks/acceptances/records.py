"""The rules of acceptance the register's own commands apply, and the writing of acceptance records: a risk's
inline acceptance (one approved outside riskops, recorded), a reassessment that makes an acceptance need
re-approval, and the history, events and notices of every acceptance. risks.service and risks.bulk call these;
the workflow (acceptances.service) builds on them. Callers commit."""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.models import Role
from riskops.apikeys.service import ACTOR_MAX, Principal
from riskops.audit.models import AuditEntry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import insert_numbered, table_of
from riskops.errors import Forbidden, Unprocessable, field_error
from riskops.events import service as events
from riskops.notices import service as scheduler
from riskops.risks.acceptances.models import (
    AcceptanceDecision,
    AcceptanceRecord,
    AcceptanceRisk,
    AcceptanceState,
    AcceptanceStatus,
    DecisionKind,
    reference,
)
from riskops.risks.appetite import service as appetite
from riskops.risks.appetite.service import Limits
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import AcceptanceIn, Risk, Treatment
from riskops.risks.models import reference as risk_reference
from riskops.risks.scoring import RATING_COLUMNS

Loc = tuple[str | int, ...]

# The notices of an acceptance in force: the warning before its expiry, and the expiry itself.
EXPIRING, EXPIRED = "acceptance.expiring", "acceptance.expired"
NOTICE_KINDS = (EXPIRING, EXPIRED)
# A risk accepted from its creation had no treatment before: when the acceptance ends, it is to be mitigated.
DEFAULT_PLAN = Treatment.mitigate
# What an acceptance records of a covered risk, besides its standing against the category's limits.
STATE_COLUMNS = ("status", "treatment", "category", "matrix_version", *RATING_COLUMNS, "score", "level")


# ---- who is who ----


def identity(who: Principal) -> str:
    """A person as four eyes tells people apart: a user signed in and their own keys are one (the user's id); a
    service key is itself (its id); a caller with no key (the command line, a job) is known by its name."""
    user = who.user_id if who.user_id is not None else who.owner_id
    if user is not None:
        return f"user:{user}"
    if who.key_id > 0:
        return f"key:{who.key_id}"
    return f"name:{who.name.strip().casefold()}"[:64]


def _names(who: Principal) -> set[str]:
    """The names the caller goes by: a user's own key acts as 'ann@example.org (key ci-bot)', which is Ann."""
    return {name.strip().casefold() for name in (who.name, who.name.split(" (key ", 1)[0])}


def approvers_text(names: Sequence[str]) -> str:
    """The approvers as the risk's acceptance_approver shows them, within its 200 characters."""
    text = " and ".join(dict.fromkeys(names))
    return text if len(text) <= ACTOR_MAX else text[: ACTOR_MAX - 1] + "…"


# ---- the rules ----


def inline_of(
    treatment: Treatment, held: tuple[str | None, datetime | None], acceptance: AcceptanceIn | None,
    who: Principal, loc: Loc,
) -> tuple[str | None, datetime | None]:  # fmt: skip
    """The (approver, expiry) a risk of this treatment holds, given the acceptance asked for inline (one approved
    outside riskops, to be recorded). Checked here, without the register: only with treatment 'accept', a future
    expiry, and four eyes by name (the caller does not name themself). check_recorded checks the rest."""
    if treatment != Treatment.accept:
        if acceptance is not None:
            raise Unprocessable(
                "An acceptance applies only to treatment 'accept'.",
                errors=[field_error((*loc, "acceptance"), "only allowed with treatment 'accept'")],
            )
        return None, None
    if acceptance is None:
        if held[0] is not None:
            return held  # an existing acceptance carries over an edit of other fields
        raise Unprocessable(
            "Accepting a risk needs an approver and an expiry date.",
            errors=[field_error((*loc, "acceptance"), "required when treatment is 'accept'")],
        )
    if acceptance.expires_at <= utcnow():
        raise Unprocessable(
            "The acceptance must expire in the future (timezone-aware).",
            errors=[field_error((*loc, "acceptance", "expires_at"), "must be a future, timezone-aware time")],
        )
    if acceptance.approver.strip().casefold() in _names(who):
        raise Forbidden(
            "Four eyes: you cannot record yourself as the approver of an acceptance.",
            errors=[field_error((*loc, "acceptance", "approver"), "must name someone other than you")],
        )
    return acceptance.approver, acceptance.expires_at.astimezone(UTC)


def check_expiry(expires_at: datetime, settings: Settings, loc: Loc, what: str | None = None) -> None:
    """An acceptance ends, in the future and within RISKOPS_ACCEPTANCE_MAX_DAYS (of `what`, in the message)."""
    now, days = utcnow(), settings.acceptance_max_days
    subject = f"{what}: an acceptance" if what else "An acceptance"
    if expires_at <= now:
        raise Unprocessable(f"{subject} must expire in the future.", errors=[field_error(loc, "must be in the future")])
    if expires_at > now + timedelta(days=days):
        raise Unprocessable(
            f"{subject} lasts at most {days} days (RISKOPS_ACCEPTANCE_MAX_DAYS); extend it when it ends.",
            errors=[field_error(loc, f"at most {days} days from now")],
        )


def check_recorded(
    what: str, spec: MatrixSpec, limits: Limits, level: str, expires_at: datetime, who: Principal,
    settings: Settings, loc: Loc,
) -> None:  # fmt: skip
    """What recording an acceptance approved outside riskops takes, against the register: an expiry within the
    cap; above the category's appetite, an admin recording it; beyond its tolerance it cannot be recorded, as
    only two approvals in riskops (the workflow) accept a risk there."""
    check_expiry(expires_at, settings, (*loc, "acceptance", "expires_at"), what)
    if limits.beyond_tolerance(spec, level):
        raise Unprocessable(
            f"{what}: level '{level}' is beyond its category's tolerance ('{limits.tolerance}'); only an acceptance "
            "approved by two people in riskops (POST /api/v1/acceptances) may accept it.",
            errors=[field_error((*loc, "acceptance"), "beyond the category's tolerance: request it for two approvals")],
        )
    if limits.outside(spec, level) and not who.may(Role.admin):
        raise Forbidden(
            f"{what}: level '{level}' is above the risk appetite of its category ('{limits.appetite}'); only an "
            "admin may accept it.",
            errors=[field_error((*loc, "treatment"), "above risk appetite")],
        )


def state_of(columns: Mapping[str, Any], spec: MatrixSpec, limits: Limits) -> dict[str, Any]:
    """A risk's state as an acceptance keeps it, from the risk's columns: ratings, level, matrix version, and
    where it stood against its category's limits then."""
    level = columns["level"]
    return {
        **{name: columns[name] for name in STATE_COLUMNS}, "appetite": limits.appetite,
        "tolerance": limits.tolerance, "outside_appetite": limits.outside(spec, level),
        "beyond_tolerance": limits.beyond_tolerance(spec, level),
    }  # fmt: skip


def risk_columns(risk: Risk) -> dict[str, Any]:
    return {"id": risk.id, **{name: getattr(risk, name) for name in STATE_COLUMNS}}


# ---- records ----


def in_force(session: Session, risk_ids: Collection[int]) -> dict[int, tuple[AcceptanceRisk, AcceptanceRecord]]:
    """The approved acceptance each of these risks is held by (at most one), locked for this transaction."""
    if not risk_ids:
        return {}
    rows = session.exec(
        select(AcceptanceRisk, AcceptanceRecord)
        .join(AcceptanceRecord, col(AcceptanceRecord.id) == col(AcceptanceRisk.acceptance_id))
        .where(
            col(AcceptanceRisk.risk_id).in_(risk_ids), col(AcceptanceRisk.released_at).is_(None),
            AcceptanceRecord.status == AcceptanceStatus.approved,
        )
        .with_for_update()
    )  # fmt: skip
    return {cover.risk_id: (cover, record) for cover, record in rows}


def covers(session: Session, acceptance_id: int) -> list[AcceptanceRisk]:
    query = select(AcceptanceRisk).where(AcceptanceRisk.acceptance_id == acceptance_id)
    return list(session.exec(query.order_by(col(AcceptanceRisk.risk_id))))


def record_state(acceptance: AcceptanceRecord) -> dict[str, Any]:
    """What an acceptance's history records of it: what moves after the request."""
    state = {
        "status": str(acceptance.status), "expires_at": acceptance.expires_at,
        "needs_reapproval": acceptance.needs_reapproval, "approved_at": acceptance.approved_at,
        "ended_at": acceptance.ended_at,
    }  # fmt: skip
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in state.items()}


def touch(session: Session, acceptance: AcceptanceRecord) -> None:
    acceptance.updated_at = utcnow()
    acceptance.version += 1
    session.add(acceptance)


def record_history(
    session: Session, acceptance: AcceptanceRecord, action: str, who: Principal, before: dict[str, Any],
    note: str | None = None,
) -> None:  # fmt: skip
    changes = audit.service.diff(before, record_state(acceptance))
    audit.service.record(
        session, entity_type="acceptance", entity_id=acceptance.id, action=action, actor=who.name, changes=changes,
        note=note,
    )  # fmt: skip


def announce(
    session: Session, event: str, acceptance: AcceptanceRecord, risks: Sequence[str], who: Principal,
    **extra: Any,
) -> None:  # fmt: skip
    """An acceptance.<event> event."""
    data = {
        "reference": acceptance.reference, "status": str(acceptance.status), "risks": list(risks),
        "expires_at": acceptance.expires_at.isoformat(), "requested_by": acceptance.requested_by,
        "needs_reapproval": acceptance.needs_reapproval, "actor": who.name, **extra,
    }  # fmt: skip
    events.emit(session, f"acceptance.{event}", "acceptance", acceptance.reference, data)


def note_on_risks(session: Session, risk_ids: Sequence[int], action: str, who: Principal, note: str) -> None:
    """An entry in each risk's history for what happened to its acceptance without changing the risk itself."""
    for risk_id in risk_ids:
        audit.service.record(
            session, entity_type="risk", entity_id=risk_id, action=action, actor=who.name, changes={}, note=note
        )


def notices(acceptance_id: int, expires_at: datetime, settings: Settings) -> list[dict[str, Any]]:
    """The warning before an acceptance in force ends, and its end; keyed by the expiry, so each fires once."""
    warning = expires_at - timedelta(days=settings.acceptance_warning_days)
    key = expires_at.isoformat()
    return [
        scheduler.notice(EXPIRING, "acceptance", acceptance_id, key, warning),
        scheduler.notice(EXPIRED, "acceptance", acceptance_id, key, expires_at),
    ]


def release(
    session: Session, cover: AcceptanceRisk, acceptance: AcceptanceRecord, reason: str, who: Principal,
    ends_as: AcceptanceStatus,
) -> None:  # fmt: skip
    """The risk leaves the acceptance (it is no longer accepted, or another acceptance holds it now). The last to
    leave ends the acceptance, as `ends_as`."""
    before = record_state(acceptance)
    cover.released_at, cover.released_reason = utcnow(), reason[:200]
    session.add(cover)
    session.flush()
    still = [c for c in covers(session, acceptance.id) if c.released_at is None]
    if not still:
        acceptance.status, acceptance.ended_at = ends_as, utcnow()
        scheduler.cancel(session, "acceptance", acceptance.id, NOTICE_KINDS)
    touch(session, acceptance)
    record_history(session, acceptance, "risk_released", who, before, f"{risk_reference(cover.risk_id)}: {reason}")
    if not still:
        announce(session, str(ends_as), acceptance, [risk_reference(cover.risk_id)], who, reason=reason)


@dataclass(frozen=True)
class Recorded:
    """An acceptance approved outside riskops, to be recorded for one risk."""

    risk: Mapping[str, Any]  # the risk's columns (risk_columns, or a new risk's as written)
    approver: str
    expires_at: datetime
    treatment_before: Treatment
    limits: Limits
    extends_id: int | None = None


def record_all(
    session: Session, items: Sequence[Recorded], spec: MatrixSpec, who: Principal, settings: Settings,
    outbox: events.Outbox,
) -> None:  # fmt: skip
    """An approved acceptance record per item, marked as recorded by the caller (not signed by the approver), with
    the risk's state, its history entry, an acceptance.approved event into `outbox` and its notices: a few
    statements for any number (an import)."""
    if not items:
        return
    now, me = utcnow(), identity(who)
    ids = insert_numbered(session, AcceptanceRecord, [{
        "status": AcceptanceStatus.approved, "requested_by": who.name, "requested_by_identity": me,
        "requested_at": now, "justification": f"Approved outside riskops by {item.approver}; recorded by {who.name}.",
        "conditions": "", "expires_at": item.expires_at, "extends_id": item.extends_id, "recorded": True,
        "needs_reapproval": False, "approved_at": now, "ended_at": None, "updated_at": now, "version": 1,
    } for item in items])  # fmt: skip
    session.execute(insert(table_of(AcceptanceRisk)), [
        {"acceptance_id": acceptance_id, "risk_id": item.risk["id"], "treatment_before": item.treatment_before,
         "released_at": None, "released_reason": None}
        for acceptance_id, item in zip(ids, items, strict=True)
    ])  # fmt: skip
    decisions = insert_numbered(session, AcceptanceDecision, [{
        "acceptance_id": acceptance_id, "kind": DecisionKind.approve, "decided_by": item.approver, "identity": me,
        "role": str(who.role), "comment": "", "recorded_by": who.name, "decided_at": now,
    } for acceptance_id, item in zip(ids, items, strict=True)])  # fmt: skip
    session.execute(insert(table_of(AcceptanceState)), [
        {"acceptance_id": acceptance_id, "risk_id": item.risk["id"], "decision_id": decision_id, "at": now,
         **state_of(item.risk, spec, item.limits)}
        for acceptance_id, decision_id, item in zip(ids, decisions, items, strict=True)
    ])  # fmt: skip
    entries, planned = [], []
    for acceptance_id, item in zip(ids, items, strict=True):
        ref, risk_ref = reference(acceptance_id), risk_reference(item.risk["id"])
        state = {"status": "approved", "expires_at": item.expires_at.isoformat(), "needs_reapproval": False,
                 "approved_at": now.isoformat(), "ended_at": None}  # fmt: skip
        entries.append({
            "entity_type": "acceptance", "entity_id": str(acceptance_id), "action": "recorded", "actor": who.name,
            "at": now, "changes": audit.service.diff({}, state), "note": f"{risk_ref} approved by {item.approver}",
        })  # fmt: skip
        outbox.emit("acceptance.approved", "acceptance", ref, {
            "reference": ref, "status": "approved", "risks": [risk_ref], "expires_at": item.expires_at.isoformat(),
            "requested_by": who.name, "needs_reapproval": False, "actor": who.name, "approved_by": [item.approver],
            "recorded": True,
        }, at=now)  # fmt: skip
        planned += notices(acceptance_id, item.expires_at, settings)
    session.execute(insert(table_of(AuditEntry)), entries)
    scheduler.plan(session, planned)


def apply_inline(
    session: Session, risk: Risk, spec: MatrixSpec, acceptance: AcceptanceIn | None, who: Principal,
    settings: Settings, treatment_before: str, loc: Loc,
) -> None:  # fmt: skip
    """An edit's treatment and inline acceptance: a new one is recorded (and takes over from the one in force); a
    treatment other than 'accept' takes the risk out of the acceptance in force. The risk's acceptance columns
    mirror the outcome; the edit's own history entry records them on the risk."""
    held = (risk.acceptance_approver, risk.acceptance_expires_at)
    approver, expires_at = inline_of(risk.treatment, held, acceptance, who, loc)
    if (approver, expires_at) == held:
        return
    current = in_force(session, [risk.id]).get(risk.id)
    if approver is None or expires_at is None:
        if current is not None:
            release(session, *current, f"treatment changed to '{risk.treatment}'", who, AcceptanceStatus.withdrawn)
        risk.acceptance_approver = risk.acceptance_expires_at = None
        return
    limits = appetite.limits_for(session, risk.category, spec)
    check_recorded(risk.reference, spec, limits, risk.level, expires_at, who, settings, loc)
    plan = Treatment(treatment_before) if treatment_before != Treatment.accept else DEFAULT_PLAN
    extends = None
    if current is not None:
        plan, extends = current[0].treatment_before, current[1].id
        release(session, *current, "a newer recorded acceptance holds it", who, AcceptanceStatus.superseded)
    outbox = events.Outbox()
    record_all(session, [Recorded(risk_columns(risk), approver, expires_at, plan, limits, extends)], spec, who,
               settings, outbox)  # fmt: skip
    events.record(session, outbox)
    risk.acceptance_approver, risk.acceptance_expires_at = approver, expires_at


def govern(
    session: Session, risk: Risk, spec: MatrixSpec, who: Principal, *, level_before: str, version_before: int
) -> None:
    """After a reassessment: a higher level, or another matrix, is a material change to what was accepted. The
    acceptance stays in force until it expires or is revoked, marked as needing re-approval (an extension
    approved anew clears it), with an entry in its history and the risk's and an acceptance.needs_reapproval
    event."""
    if risk.matrix_version == version_before and spec.rank(risk.level) <= spec.rank(level_before):
        return
    current = in_force(session, [risk.id]).get(risk.id)
    if current is None:
        return
    acceptance = current[1]
    if risk.matrix_version != version_before:
        why = f"{risk.reference} moved to matrix version {risk.matrix_version} (level '{risk.level}')"
    else:
        why = f"{risk.reference} rose from '{level_before}' to '{risk.level}'"
    note_on_risks(session, [risk.id], "acceptance_needs_reapproval", who, f"{acceptance.reference}: {why}")
    if acceptance.needs_reapproval:
        return  # flagged already: the risk's history says what moved again
    before = record_state(acceptance)
    acceptance.needs_reapproval = True
    touch(session, acceptance)
    record_history(session, acceptance, "needs_reapproval", who, before, why)
    refs = [risk_reference(c.risk_id) for c in covers(session, acceptance.id) if c.released_at is None]
    announce(session, "needs_reapproval", acceptance, refs, who, reason=why, risk=risk.reference)

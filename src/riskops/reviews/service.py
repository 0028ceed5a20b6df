"""Quarterly review cycles, frozen snapshots of the register (rebuilt from its history), and movements."""

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlmodel import Session, col, func, select, update

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.audit.models import AuditEntry
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import insert_unless_present, table_of
from riskops.errors import Conflict, InvalidTransition, NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.incidents import service as incidents
from riskops.incidents.models import Incident, IncidentRisk
from riskops.mail import service as mail
from riskops.reviews.models import (
    CyclePublic,
    CycleSummary,
    OwnerProgress,
    ProgressTotals,
    ReminderPublic,
    ReviewCreate,
    ReviewCycle,
    ReviewOutcome,
    ReviewRequest,
    RiskReview,
    Snapshot,
)
from riskops.risks import scheduled as risk_deadlines
from riskops.risks import service as risks
from riskops.risks.matrices.models import RiskMatrix
from riskops.risks.models import AssessmentCreate, Risk, RiskStatus, reference

# ---- quarters ----


def cycle_id_for(moment: datetime, start_month: int) -> str:
    """The fiscal quarter containing `moment`; a fiscal year is named by the calendar year it starts in."""
    months = (moment.year * 12 + moment.month - 1) - (start_month - 1)
    year, month_in_year = divmod(months, 12)
    return f"{year}Q{month_in_year // 3 + 1}"


def bounds(cycle_id: str, start_month: int) -> tuple[datetime, datetime]:
    """The quarter's start and end (exclusive); ValueError for a quarter outside years 1 to 9999."""
    year, quarter = int(cycle_id[:4]), int(cycle_id[5])
    first = year * 12 + (start_month - 1) + (quarter - 1) * 3
    start = datetime(first // 12, first % 12 + 1, 1, tzinfo=UTC)
    end_index = first + 3
    return start, datetime(end_index // 12, end_index % 12 + 1, 1, tzinfo=UTC)


def previous(cycle_id: str) -> str:
    """The quarter before, by counting (so the first datable quarter has one too: a cycle that never exists)."""
    year, quarter = int(cycle_id[:4]), int(cycle_id[5])
    return f"{year:04d}Q{quarter - 1}" if quarter > 1 else f"{year - 1:04d}Q4"


# ---- cycles ----


def get_cycle(session: Session, cycle_id: str, *, for_update: bool = False) -> ReviewCycle:
    cycle = session.get(ReviewCycle, cycle_id, with_for_update=for_update)
    if cycle is None:
        raise NotFound(f"Review cycle {cycle_id} does not exist; open it first.")
    return cycle


def open_cycle(session: Session, cycle_id: str, who: Principal, settings: Settings) -> ReviewCycle:
    """Open a quarter's review once the quarter has started, and ask every owner to review their open risks."""
    try:
        start, end = bounds(cycle_id, settings.fiscal_year_start_month)
    except ValueError:
        raise Unprocessable(
            f"{cycle_id} is not a quarter riskops can date.", errors=[field_error(("body", "cycle"), "years 1 to 9999")]
        ) from None
    if start > utcnow():  # owners asked weeks early would review a register that is still moving
        raise Conflict(
            f"Review cycle {cycle_id} can be opened once its quarter starts, on {start:%Y-%m-%d}.",
            errors=[field_error(("body", "cycle"), f"starts {start:%Y-%m-%d}")],
        )
    if session.get(ReviewCycle, cycle_id) is not None:
        raise Conflict(f"Review cycle {cycle_id} was opened already.")
    cycle = ReviewCycle(id=cycle_id, starts_at=start, ends_at=end, opened_by=who.name)
    session.add(cycle)
    session.flush()
    owners = open_risks_by_owner(session)
    for key, found in sorted(owners.items()):
        if _claim_request(session, cycle, key, found.owner):
            _send_request(session, cycle, found.owner, found.risk_ids)
    audit.service.record(
        session, entity_type="review_cycle", entity_id=cycle_id, action="opened", actor=who.name,
        changes={"owners": {"old": None, "new": len(owners)}},
    )  # fmt: skip
    return cycle


def current_open_cycle(session: Session) -> ReviewCycle | None:
    """The open cycle of the quarter under way, if any (one whose quarter is over is left to be closed)."""
    now = utcnow()
    return session.exec(
        select(ReviewCycle)
        .where(col(ReviewCycle.closed_at).is_(None), col(ReviewCycle.starts_at) <= now, col(ReviewCycle.ends_at) > now)
        .order_by(col(ReviewCycle.starts_at).desc())
    ).first()


@dataclass(frozen=True)
class OwnerRisks:
    owner: str  # as spelt on the owner's oldest open risk
    risk_ids: list[int]


def open_risks_by_owner(session: Session, key: str | None = None) -> dict[str, OwnerRisks]:
    """Open risks by owner key (owners match case-insensitively, risks.scheduled.owner_key), oldest first;
    only that owner's with `key`."""
    query = select(Risk.id, Risk.owner).where(Risk.status == RiskStatus.open).order_by(col(Risk.id))
    if key is not None:
        query = query.where(func.lower(Risk.owner) == key)  # the owner index's expression
    out: dict[str, OwnerRisks] = {}
    for risk_id, owner in session.exec(query):
        out.setdefault(risk_deadlines.owner_key(owner), OwnerRisks(owner, [])).risk_ids.append(risk_id)
    return out


def request_review(session: Session, cycle: ReviewCycle, owner: str) -> bool:
    """Ask an owner (matched case-insensitively) to review their open risks in the cycle, once per cycle:
    False when they were asked already."""
    key = risk_deadlines.owner_key(owner)
    if not _claim_request(session, cycle, key, owner):
        return False
    found = open_risks_by_owner(session, key).get(key)
    _send_request(session, cycle, owner, found.risk_ids if found else [])
    return True


def _claim_request(session: Session, cycle: ReviewCycle, key: str, owner: str) -> bool:
    """Record the owner's request in the cycle unless there is one: False if there was. The unique key decides
    (INSERT ... ON CONFLICT DO NOTHING), so concurrent workers and admins never ask twice nor fail."""
    row = {"cycle_id": cycle.id, "owner_key": key, "owner": owner, "requested_at": utcnow(), "reminded_at": None}
    table = table_of(ReviewRequest)
    claimed = insert_unless_present(session, table).values(row).returning(table.c.id)
    return session.connection().execute(claimed).first() is not None


def _send_request(
    session: Session, cycle: ReviewCycle, owner: str, risk_ids: list[int], *, reminder: bool = False
) -> None:
    refs = [reference(risk_id) for risk_id in risk_ids]
    data = {
        "cycle": cycle.id, "owner": owner, "risks": refs, "ends_at": cycle.ends_at.isoformat(), "reminder": reminder,
    }  # fmt: skip
    events.emit(session, "review.requested", "review", cycle.id, data)
    if mail.looks_like_address(owner):
        mail.queue(
            session, owner,
            f"[riskops] {'Reminder: q' if reminder else 'Q'}uarterly risk review {cycle.id}: {len(refs)} risk(s)",
            f"Please review these risks in riskops before {cycle.ends_at:%Y-%m-%d}: {', '.join(refs)}.",
        )  # fmt: skip


def remind(session: Session, cycle: ReviewCycle, who: Principal, owner: str | None = None) -> ReminderPublic:
    """Ask again every owner with open risks, or the one given (any case), and note when on their requests
    (an owner never asked gets a request now)."""
    if cycle.closed_at is not None:
        raise InvalidTransition(f"Review cycle {cycle.id} is closed: there is nothing left to review.", allowed=[])
    key = None if owner is None else risk_deadlines.owner_key(owner)
    owners = open_risks_by_owner(session, key)
    if key is not None and key not in owners:
        raise NotFound(f"{owner} has no open risks to review.")
    now = utcnow()
    for found_key, found in sorted(owners.items()):
        _claim_request(session, cycle, found_key, found.owner)
        _send_request(session, cycle, found.owner, found.risk_ids, reminder=True)
    session.exec(
        update(ReviewRequest)
        .where(col(ReviewRequest.cycle_id) == cycle.id, col(ReviewRequest.owner_key).in_(list(owners)))
        .values(reminded_at=now)
    )
    names = [found.owner for _, found in sorted(owners.items())]
    audit.service.record(
        session, entity_type="review_cycle", entity_id=cycle.id, action="reminded", actor=who.name,
        changes={"reminded": {"old": None, "new": names}},
    )  # fmt: skip
    return ReminderPublic(cycle=cycle.id, reminded=names, reminded_at=now)


def record_review(
    session: Session, cycle: ReviewCycle, risk: Risk, data: ReviewCreate, who: Principal, settings: Settings
) -> RiskReview:
    """An owner's review of one risk in the cycle; reviewed and reassessed restart its review clock."""
    if cycle.closed_at is not None:
        raise InvalidTransition(f"Review cycle {cycle.id} is closed.", allowed=[])
    if data.outcome != ReviewOutcome.reassessed and (data.inherent or data.residual):
        raise Unprocessable(
            "New scores go with outcome 'reassessed'.", errors=[field_error(("body", "outcome"), "must be reassessed")]
        )
    if data.outcome == ReviewOutcome.reassessed and not (data.inherent or data.residual):
        raise Unprocessable(
            "A reassessment needs new scores.", errors=[field_error(("body", "inherent"), "inherent or residual")]
        )
    if data.outcome != ReviewOutcome.proposed_closure:
        assessment = AssessmentCreate(
            inherent=data.inherent, residual=data.residual, rationale=f"{cycle.id}: {data.comment}"
        )
        risks.assess_risk(session, risk, assessment, who, settings)
    review = session.exec(
        select(RiskReview).where(RiskReview.cycle_id == cycle.id, RiskReview.risk_id == risk.id)
    ).first() or RiskReview(cycle_id=cycle.id, risk_id=risk.id, outcome=data.outcome, comment="", reviewer="")
    review.outcome, review.comment, review.reviewer, review.reviewed_at = data.outcome, data.comment, who.name, utcnow()
    session.add(review)
    session.flush()
    return review


# Progress counts the register's open risks, and their reviews in the cycle: per owner and in totals alike.
_UNDER_REVIEW = Risk.status == RiskStatus.open


def _cycle_fields(cycle: ReviewCycle, snapshot_hash: str | None) -> dict[str, Any]:
    return {
        "id": cycle.id, "state": "open" if cycle.closed_at is None else "closed", "starts_at": cycle.starts_at,
        "ends_at": cycle.ends_at, "opened_at": cycle.opened_at, "opened_by": cycle.opened_by,
        "closed_at": cycle.closed_at, "closed_by": cycle.closed_by, "snapshot_id": cycle.snapshot_id,
        "snapshot_hash": snapshot_hash,
    }  # fmt: skip


def present_cycle(session: Session, cycle: ReviewCycle) -> CyclePublic:
    snapshot = session.get(Snapshot, cycle.snapshot_id) if cycle.snapshot_id else None
    return CyclePublic(
        **_cycle_fields(cycle, snapshot.content_hash if snapshot else None), progress=progress(session, cycle)
    )


def list_cycles(session: Session) -> list[CycleSummary]:
    """Every cycle, newest first, with its progress totals: two statements, however many cycles and owners."""
    open_risks = select(func.count()).select_from(Risk).where(_UNDER_REVIEW).scalar_subquery()
    cycles = session.exec(
        select(ReviewCycle, Snapshot.content_hash, open_risks)
        .outerjoin(Snapshot, col(Snapshot.id) == col(ReviewCycle.snapshot_id))
        .order_by(col(ReviewCycle.starts_at).desc())
    ).all()
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for cycle_id, outcome, n in session.exec(
        select(RiskReview.cycle_id, RiskReview.outcome, func.count())
        .join(Risk, col(Risk.id) == col(RiskReview.risk_id))
        .where(_UNDER_REVIEW)
        .group_by(col(RiskReview.cycle_id), col(RiskReview.outcome))
    ):
        outcomes[cycle_id][outcome] += n
    return [
        CycleSummary(
            **_cycle_fields(cycle, digest),
            progress=ProgressTotals(
                risks=risks_open,
                reviewed=outcomes[cycle.id].total(),
                proposed_closure=outcomes[cycle.id][ReviewOutcome.proposed_closure],
            ),
        )
        for cycle, digest, risks_open in cycles
    ]


def progress(session: Session, cycle: ReviewCycle) -> list[OwnerProgress]:
    """Per owner, owners matched case-insensitively and shown as first seen (on their oldest open risk)."""
    rows = session.exec(
        select(Risk.owner, RiskReview.outcome)
        .select_from(Risk)
        .outerjoin(RiskReview, and_(col(RiskReview.risk_id) == col(Risk.id), col(RiskReview.cycle_id) == cycle.id))
        .where(_UNDER_REVIEW)
        .order_by(col(Risk.id))
    )
    names: dict[str, str] = {}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for owner, outcome in rows:
        key = risk_deadlines.owner_key(owner)
        names.setdefault(key, owner)
        counts[key]["risks"] += 1
        counts[key]["reviewed"] += outcome is not None
        counts[key]["proposed"] += outcome == ReviewOutcome.proposed_closure
    requests = {r.owner_key: r for r in session.exec(select(ReviewRequest).where(ReviewRequest.cycle_id == cycle.id))}
    return [
        OwnerProgress(
            owner=names[key],
            risks=c["risks"],
            reviewed=c["reviewed"],
            proposed_closure=c["proposed"],
            requested_at=requests[key].requested_at if key in requests else None,
            reminded_at=requests[key].reminded_at if key in requests else None,
        )
        for key, c in sorted(counts.items())
    ]


def close_cycle(session: Session, cycle: ReviewCycle, who: Principal) -> Snapshot:
    """Freeze the register as it stood at the earlier of now and the quarter's end."""
    if cycle.closed_at is not None:
        raise InvalidTransition(f"Review cycle {cycle.id} was closed at {cycle.closed_at.isoformat()}.", allowed=[])
    now = utcnow()
    if now < cycle.starts_at:
        raise InvalidTransition(f"Review cycle {cycle.id} has not started yet.", allowed=[])
    snapshot = take_snapshot(session, min(now, cycle.ends_at), who, cycle=cycle)
    cycle.closed_at, cycle.closed_by, cycle.snapshot_id = now, who.name, snapshot.id
    session.add(cycle)
    audit.service.record(
        session, entity_type="review_cycle", entity_id=cycle.id, action="closed", actor=who.name,
        changes={"snapshot": {"old": None, "new": snapshot.content_hash}},
    )  # fmt: skip
    return snapshot


# ---- snapshots ----


def canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def take_snapshot(session: Session, as_of: datetime, who: Principal, *, cycle: ReviewCycle | None = None) -> Snapshot:
    if as_of > utcnow():
        raise Unprocessable(
            "A snapshot cannot be taken of the future.", errors=[field_error(("body", "as_of"), "in the future")]
        )
    content = register_as_of(session, as_of, cycle)
    snapshot = Snapshot(
        cycle_id=cycle.id if cycle else None, as_of=as_of, taken_by=who.name, content=content,
        content_hash=content_hash(content),
    )  # fmt: skip
    session.add(snapshot)
    session.flush()
    return snapshot


def get_snapshot(session: Session, snapshot_id: int) -> Snapshot:
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None:
        raise NotFound(f"Snapshot {snapshot_id} does not exist.")
    return snapshot


def cycle_snapshot(session: Session, cycle_id: str) -> Snapshot:
    cycle = get_cycle(session, cycle_id)
    if cycle.snapshot_id is None:
        raise Conflict(f"Review cycle {cycle_id} is not closed yet: its frozen snapshot does not exist.")
    return get_snapshot(session, cycle.snapshot_id)


def register_as_of(session: Session, as_of: datetime, cycle: ReviewCycle | None) -> dict[str, Any]:
    """The register at `as_of`, replayed from the append-only audit trail (so any past date works)."""
    states: dict[int, dict[str, Any]] = {}
    controls: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    history = session.exec(
        select(AuditEntry)
        .where(AuditEntry.entity_type == "risk", col(AuditEntry.at) <= as_of)
        .order_by(col(AuditEntry.id))
        .execution_options(yield_per=2000)
    )
    for entry in history:
        risk_id = int(entry.entity_id)
        state = states.setdefault(risk_id, {})
        for key, change in entry.changes.items():
            if key.startswith("controls."):
                _, control_id, *field = key.split(".")
                if field:
                    controls[risk_id].setdefault(control_id, {})[field[0]] = change["new"]
                else:
                    controls[risk_id][control_id] = dict(change["new"])
            else:
                state[key] = change["new"]
    reviews = {}
    if cycle is not None:
        for review in session.exec(
            select(RiskReview).where(RiskReview.cycle_id == cycle.id, col(RiskReview.reviewed_at) <= as_of)
        ):
            reviews[review.risk_id] = str(review.outcome)
    stamp = as_of.isoformat()
    register = [_risk_record(i, s, controls[i], reviews.get(i), stamp) for i, s in sorted(states.items())]
    matrix = (
        session.exec(
            select(RiskMatrix).where(col(RiskMatrix.published_at) <= as_of).order_by(col(RiskMatrix.version).desc())
        ).first()
        or session.exec(select(RiskMatrix).order_by(col(RiskMatrix.version))).first()
    )
    start = cycle.starts_at if cycle else as_of - timedelta(days=91)
    open_risks = [r for r in register if r["status"] == "open"]
    incidents_in_period = _incidents(session, start, as_of)
    real = [i for i in incidents_in_period if not i["exercise"]]
    return {
        "as_of": stamp,
        "cycle": cycle.id if cycle else None,
        "period_start": start.isoformat(),
        "matrix": {"version": matrix.version, **matrix.spec} if matrix else None,
        "summary": {
            "risks": len(register),
            "open": len(open_risks),
            "by_level": dict(sorted(Counter(r["level"] for r in open_risks).items())),
            "overdue": sum(r["overdue"] for r in open_risks),
            "reviewed_in_cycle": len(reviews),
            "incidents": len(real),
            "rto_missed": sum(i["rto_met"] is False for i in real),  # drills are judged by objectives_met
        },  # fmt: skip
        "risks": register,
        "incidents": incidents_in_period,
    }


def _risk_record(
    risk_id: int, s: dict[str, Any], controls: dict[str, dict[str, Any]], review: str | None, as_of: str
) -> dict[str, Any]:
    def rating(which: str) -> dict[str, Any] | None:
        if s.get(f"{which}_likelihood") is None:
            return None
        return {k: s.get(f"{which}_{k}") for k in ("likelihood", "impact", "score", "level")}

    expires = s.get("acceptance_expires_at")
    acceptance = None
    if s.get("acceptance_approver") and expires:
        acceptance = {"approver": s["acceptance_approver"], "expires_at": expires, "expired": expires <= as_of}
    return {
        "id": risk_id, "reference": reference(risk_id), "title": s.get("title"), "category": s.get("category"),
        "owner": s.get("owner"), "status": s.get("status"), "treatment": s.get("treatment"),
        "tags": s.get("tags") or [], "matrix_version": s.get("matrix_version"),
        "inherent": rating("inherent"), "residual": rating("residual"),
        "score": s.get("score"), "level": s.get("level"),
        "acceptance": acceptance,
        "controls": [{"id": int(k), **v} for k, v in sorted(controls.items(), key=lambda kv: int(kv[0]))],
        "last_reviewed_at": s.get("last_reviewed_at"), "next_review_at": s.get("next_review_at"),
        "overdue": s.get("status") == "open" and (s.get("next_review_at") or as_of) < as_of,
        "closed_at": s.get("closed_at"), "materialised_at": s.get("materialised_at"), "review_in_cycle": review,
    }  # fmt: skip


def _incidents(session: Session, start: datetime, as_of: datetime) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Incident)
        .where(col(Incident.declared_at) >= start, col(Incident.declared_at) <= as_of)
        .order_by(col(Incident.id))
    ).all()
    links: dict[int, list[str]] = defaultdict(list)
    for incident_id, risk_id in session.exec(
        select(IncidentRisk.incident_id, IncidentRisk.risk_id).where(
            col(IncidentRisk.incident_id).in_([r.id for r in rows])
        )
    ):
        links[incident_id].append(reference(risk_id))
    out = []
    for incident in rows:
        resolved = incident.resolved_at if incident.resolved_at and incident.resolved_at <= as_of else None
        rto_met = incidents.rto_met(incident.breach_at, resolved, as_of)
        out.append({
            "reference": incident.reference, "title": incident.title, "severity": str(incident.severity),
            "exercise": incident.is_exercise, "playbook": incident.playbook_slug,
            "declared_at": incident.declared_at.isoformat(), "resolved_at": resolved.isoformat() if resolved else None,
            "rto_met": rto_met, "breached": rto_met is False,  # the breach time passed before it was resolved
            "objectives_met": incident.objectives_met, "risks": sorted(links[incident.id]),
        })  # fmt: skip
    return out


# ---- movements ----


def incident_movement(incident: dict[str, Any]) -> str:
    """Where a snapshot's incident counts: a drill is an exercise; a real incident materialised the risks it is
    linked to, and one linked to none is listed apart rather than counted as a risk that happened."""
    if incident["exercise"]:
        return "exercises"
    return "materialised" if incident.get("risks") else "incidents_without_risks"


def movements(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What moved between two snapshots' contents (old None: everything counts as added)."""
    before = {r["id"]: r for r in (old or {}).get("risks", [])}
    levels = [lv["name"] for lv in (new.get("matrix") or {}).get("levels", [])]

    def rank(level: str | None) -> int:
        return levels.index(level) if level in levels else -1

    out: dict[str, list[Any]] = defaultdict(list)
    for risk in new["risks"]:
        ref, was = risk["reference"], before.get(risk["id"])
        if was is None:
            out["added"].append(ref)
            continue
        if was["status"] == "open" and risk["status"] == "closed":
            out["closed"].append(ref)
        if was["status"] == "closed" and risk["status"] == "open":
            out["reopened"].append(ref)
        if rank(risk["level"]) > rank(was["level"]):
            out["level_up"].append({"risk": ref, "from": was["level"], "to": risk["level"]})
        elif rank(risk["level"]) < rank(was["level"]):
            out["level_down"].append({"risk": ref, "from": was["level"], "to": risk["level"]})
        if risk["score"] != was["score"]:
            out["score_changed"].append({"risk": ref, "from": was["score"], "to": risk["score"]})
        if risk["treatment"] != was["treatment"]:
            out["treatment_changed"].append({"risk": ref, "from": was["treatment"], "to": risk["treatment"]})
    horizon = (datetime.fromisoformat(new["as_of"]) + timedelta(days=92)).isoformat()
    for risk in new["risks"]:
        if risk["status"] != "open":
            continue
        if risk["overdue"]:
            out["overdue_reviews"].append(risk["reference"])
        acceptance = risk["acceptance"]
        if acceptance and acceptance["expired"]:
            out["acceptances_expired"].append(risk["reference"])
        elif acceptance and acceptance["expires_at"] <= horizon:
            out["acceptances_expiring_next_quarter"].append(risk["reference"])
    for incident in new["incidents"]:
        out[incident_movement(incident)].append(incident)
    keys = (
        "added", "closed", "reopened", "level_up", "level_down", "score_changed", "treatment_changed",
        "overdue_reviews", "acceptances_expired", "acceptances_expiring_next_quarter", "materialised",
        "incidents_without_risks", "exercises",
    )  # fmt: skip
    return {"from": (old or {}).get("as_of"), "to": new["as_of"], **{k: out.get(k, []) for k in keys}}


def live_content(session: Session) -> dict[str, Any]:
    """The register now, in snapshot form (not stored)."""
    return register_as_of(session, utcnow(), None)

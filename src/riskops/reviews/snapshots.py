"""Frozen snapshots of the register: rebuilt from its append-only history as of any past moment, with the
period's incidents and a summary, stored with the SHA-256 of their canonical JSON."""

import hashlib
import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.errors import NotFound, Unprocessable, field_error
from riskops.incidents import service as incidents
from riskops.incidents.models import Incident, IncidentRisk
from riskops.reviews import evidence
from riskops.reviews.models import Content, ReviewCycle, RiskReview, Snapshot
from riskops.risks.appetite.models import appetite_response
from riskops.risks.history import RiskAsOf, states_as_of
from riskops.risks.matrices.models import RiskMatrix
from riskops.risks.models import reference, statement
from riskops.risks.scoring import is_overdue


def canonical(document: dict[str, Any]) -> bytes:
    """The one JSON form a snapshot is hashed and exported in: sorted keys, compact, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(content: Content) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def take_snapshot(session: Session, as_of: datetime, who: Principal, *, cycle: ReviewCycle | None = None) -> Snapshot:
    if as_of > utcnow():
        raise Unprocessable(
            "A snapshot cannot be taken of the future.", errors=[field_error(("body", "as_of"), "in the future")]
        )
    content = snapshot_content(session, as_of, cycle)
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


def live_content(session: Session) -> Content:
    """The register now, in snapshot form (not stored)."""
    return register_as_of(session, utcnow(), None)


def snapshot_content(session: Session, as_of: datetime, cycle: ReviewCycle | None) -> Content:
    """What a stored snapshot keeps: the register as of `as_of`, and its quantified loss. Only a stored snapshot
    is simulated; the live register (its heat map, an open cycle's movements) needs no Monte Carlo run per read."""
    return {**register_as_of(session, as_of, cycle), "quantified_loss": evidence.quantified_loss(session, as_of)}


def register_as_of(session: Session, as_of: datetime, cycle: ReviewCycle | None) -> Content:
    """The register at `as_of`, replayed from the append-only audit trail (so any past date works)."""
    risks = states_as_of(session, as_of)
    reviews: dict[int, RiskReview] = {}
    if cycle is not None:
        for review in session.exec(
            select(RiskReview).where(RiskReview.cycle_id == cycle.id, col(RiskReview.reviewed_at) <= as_of)
        ):
            reviews[review.risk_id] = review
    register = [_risk_record(i, risk, reviews.get(i), as_of) for i, risk in sorted(risks.items())]
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
    accepted = evidence.acceptances(session, start, as_of)
    tested = evidence.control_tests(session, start, as_of)
    recoverable = evidence.processes(session)
    plans = evidence.treatment_plans(session, as_of)
    indicators, turned = evidence.kris(session, as_of), evidence.kri_transitions(session, start, as_of)
    worst = evidence.kri_status_by_risk(indicators)
    for record in register:  # as in the register's own answers and export
        record["kri_status"] = worst.get(record["reference"])
    return {
        "as_of": as_of.isoformat(),
        "cycle": cycle.id if cycle else None,
        "period_start": start.isoformat(),
        "matrix": {"version": matrix.version, **matrix.spec} if matrix else None,
        "summary": {
            "risks": len(register),
            "open": len(open_risks),
            "by_level": dict(sorted(Counter(r["level"] for r in open_risks).items())),
            "overdue": sum(r["overdue"] for r in open_risks),
            # Every open risk above its category's appetite, and those of them with no answer yet.
            "outside_appetite": [r["reference"] for r in open_risks if r["outside_appetite"]],
            "outside_appetite_unanswered": [r["reference"] for r in open_risks if r["appetite_response"] == "none"],
            "reviewed_in_cycle": len(reviews),
            "incidents": len(real),
            "rto_missed": sum(i["rto_met"] is False for i in real),  # drills are judged by objectives_met
            "acceptances_in_force": sum(a["status"] == "approved" for a in accepted),
            "controls_found_ineffective": len(evidence.found_ineffective(tested)),
            "processes_rto_not_met": [p["reference"] for p in recoverable if p["rto_met"] is False],
        },  # fmt: skip
        "risks": register,
        "incidents": incidents_in_period,
        "acceptances": accepted,
        "control_tests": tested,
        "processes": recoverable,
        "treatment_plans": plans,
        "kris": indicators,
        "kri_transitions": turned,
    }


def _risk_record(risk_id: int, risk: RiskAsOf, review: RiskReview | None, as_of: datetime) -> dict[str, Any]:
    s, stamp = risk.state, as_of.isoformat()

    def rating(which: str) -> dict[str, Any] | None:
        if s.get(f"{which}_likelihood") is None:
            return None
        return {k: s.get(f"{which}_{k}") for k in ("likelihood", "impact", "score", "level", "impacts")}

    next_review, expires = s.get("next_review_at"), s.get("acceptance_expires_at")
    acceptance = None
    if s.get("acceptance_approver") and expires:
        acceptance = {"approver": s["acceptance_approver"], "expires_at": expires, "expired": expires <= stamp}
    target = None
    if s.get("target_likelihood") is not None:
        target = {k: s.get(f"target_{k}") for k in ("likelihood", "impact", "score", "level", "date")}
    risk_type, cause, event, consequence = (s.get(k) or "" for k in ("type", "cause", "event", "consequence"))
    outside = bool(s.get("outside_appetite"))
    held = datetime.fromisoformat(expires) if acceptance and expires else None
    response = appetite_response(outside, bool(s.get("target_within_appetite")), held, as_of)
    return {
        "id": risk_id, "reference": reference(risk_id), "title": s.get("title"), "category": s.get("category"),
        "owner": s.get("owner"), "status": s.get("status"), "treatment": s.get("treatment"),
        "type": risk_type or "threat", "statement": statement(risk_type, cause, event, consequence),
        "source": s.get("source") or "", "objectives": s.get("objectives") or [],
        "tags": s.get("tags") or [], "matrix_version": s.get("matrix_version"),
        "inherent": rating("inherent"), "residual": rating("residual"), "target": target,
        "score": s.get("score"), "level": s.get("level"),
        "outside_appetite": outside, "beyond_tolerance": bool(s.get("beyond_tolerance")),
        "appetite_response": str(response) if response else None,
        "acceptance": acceptance,
        "controls": [{"id": int(k), **v} for k, v in sorted(risk.controls.items(), key=lambda kv: int(kv[0]))],
        "last_reviewed_at": s.get("last_reviewed_at"), "next_review_at": next_review,
        "overdue": is_overdue(s.get("status", ""), datetime.fromisoformat(next_review) if next_review else None, as_of),
        "closed_at": s.get("closed_at"), "materialised_at": s.get("materialised_at"),
        "review_in_cycle": str(review.outcome) if review else None,
        # What the owner said, for the meeting (a proposed closure above all); snapshots before it lack the key.
        "review_comment": review.comment if review else None,
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
            "breach_at": incident.breach_at.isoformat() if incident.breach_at else None,  # the RTO's deadline
            "rto_met": rto_met, "breached": rto_met is False,  # the breach time passed before it was resolved
            "objectives_met": incident.objectives_met, "risks": sorted(links[incident.id]),
        })  # fmt: skip
    return out

"""The acceptance workflow: requested -> approved or rejected; approved -> expired, revoked, or superseded by an
approved extension. Four eyes (whoever requested cannot approve), an admin above a category's appetite, two
approvals beyond its tolerance; each request and decision keeps the state of every risk it applied to. An
acceptance in force puts its risks in treatment 'accept'; its end puts them back to their plan and asks for
their reassessment. Callers commit."""

from collections.abc import Sequence
from datetime import UTC

from sqlmodel import Session, col, select

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import get_row
from riskops.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    field_error,
    stale,
)
from riskops.notices import service as scheduler
from riskops.risks import history
from riskops.risks import service as risks
from riskops.risks.acceptances import records
from riskops.risks.acceptances.models import (
    AcceptanceDecision,
    AcceptanceExtension,
    AcceptanceRecord,
    AcceptanceRequest,
    AcceptanceRisk,
    AcceptanceState,
    AcceptanceStatus,
    Approval,
    DecisionKind,
    Refusal,
    parse_reference,
    reference,
)
from riskops.risks.appetite import service as appetite
from riskops.risks.appetite.service import Limits
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import Risk, RiskStatus, Treatment
from riskops.risks.models import reference as risk_reference

Standing = list[tuple[Risk, MatrixSpec, Limits]]

# ---- lookup and concurrency ----


def get(session: Session, ref: str) -> AcceptanceRecord:
    acceptance_id = parse_reference(ref)
    if acceptance_id is None:
        raise NotFound(f"'{ref}' is not an acceptance reference (like ACC-0007 or 7).")
    return get_row(session, AcceptanceRecord, acceptance_id, "Acceptance")


def etag(acceptance: AcceptanceRecord) -> str:
    return f'"{acceptance.version}"'


def lock(session: Session, acceptance: AcceptanceRecord) -> AcceptanceRecord:
    """The acceptance locked for this transaction after its risks: risks first, as the register's own commands
    lock them before the acceptance holding them, so that an edit and a decision never wait on each other."""
    for cover in records.covers(session, acceptance.id):
        risks.get_risk(session, cover.risk_id, for_update=True)
    session.refresh(acceptance, with_for_update=True)
    return acceptance


def get_for_change(session: Session, ref: str, if_match: str | None) -> AcceptanceRecord:
    """The acceptance, locked for this transaction, provided it is still the version the caller read."""
    acceptance = lock(session, get(session, ref))
    if stale(if_match, etag(acceptance)):
        raise PreconditionFailed(
            f"Acceptance {acceptance.reference} has changed since you read it (now version "
            f"{acceptance.version}); read it again.",
            current_version=acceptance.version,
        )
    return acceptance


def decisions(session: Session, acceptance_id: int, kind: DecisionKind | None = None) -> list[AcceptanceDecision]:
    query = select(AcceptanceDecision).where(AcceptanceDecision.acceptance_id == acceptance_id)
    if kind is not None:
        query = query.where(AcceptanceDecision.kind == kind)
    return list(session.exec(query.order_by(col(AcceptanceDecision.id))))


def standing(session: Session, covered: Sequence[Risk]) -> Standing:
    """Each risk with its matrix and its category's limits on that matrix, now."""
    specs: dict[int, MatrixSpec] = {}
    found = []
    for risk in covered:
        spec = specs.setdefault(risk.matrix_version, matrices.get(session, risk.matrix_version).parsed())
        found.append((risk, spec, appetite.limits_for(session, risk.category, spec)))
    return found


def approvals_needed(found: Standing) -> tuple[int, bool]:
    """(how many approvals, whether an admin must give one): two beyond a category's tolerance, an admin above
    its appetite."""
    beyond = any(limits.beyond_tolerance(spec, risk.level) for risk, spec, limits in found)
    outside = any(limits.outside(spec, risk.level) for risk, spec, limits in found)
    return (2 if beyond else 1), outside or beyond


# ---- requests ----


def request(session: Session, data: AcceptanceRequest, who: Principal, settings: Settings) -> AcceptanceRecord:
    """A request to accept these open risks until the proposed expiry, none of them accepted already."""
    records.check_expiry(data.expires_at, settings, ("body", "expires_at"))
    positions: dict[int, int] = {}
    for i, ref in enumerate(data.risks):
        try:
            positions.setdefault(risks.parse_risk_ref(ref), i)
        except NotFound:
            raise _bad_risk(i, f"'{ref}' is not a risk reference (like R-0042 or 42)") from None
    covered = []
    for risk_id, i in sorted(positions.items()):
        try:
            risk = risks.get_risk(session, risk_id, for_update=True)
        except NotFound:
            raise _bad_risk(i, f"no risk {risk_reference(risk_id)} in the register") from None
        if risk.status != RiskStatus.open:
            raise _bad_risk(i, f"{risk.reference} is closed")
        covered.append(risk)
    if held := records.in_force(session, positions):
        (risk_id, (_, other)), *_ = sorted(held.items())
        raise Conflict(
            f"{risk_reference(risk_id)} is accepted under {other.reference} until {other.expires_at:%Y-%m-%d}; "
            f"request an extension of {other.reference} instead (POST /api/v1/acceptances/{other.reference}/extend).",
            errors=[field_error(("body", "risks", positions[risk_id]), f"accepted under {other.reference}")],
        )
    plans = {r.id: r.treatment if r.treatment != Treatment.accept else records.DEFAULT_PLAN for r in covered}
    return _new_request(session, covered, plans, data, who, None)


def extend(
    session: Session, old: AcceptanceRecord, data: AcceptanceExtension, who: Principal, settings: Settings
) -> AcceptanceRecord:
    """A new request for the open risks an acceptance in force holds; the old one holds them until this one is
    approved. Also how an acceptance marked as needing re-approval is approved anew (with the same expiry or
    another)."""
    if old.status != AcceptanceStatus.approved:
        raise InvalidTransition(f"Acceptance {old.reference} is {old.status}; only one in force can be extended.")
    pending = session.exec(
        select(AcceptanceRecord.id).where(
            AcceptanceRecord.extends_id == old.id, AcceptanceRecord.status == AcceptanceStatus.requested
        )
    ).first()
    if pending is not None:
        raise Conflict(f"An extension of {old.reference} ({reference(pending)}) is awaiting a decision already.")
    records.check_expiry(data.expires_at, settings, ("body", "expires_at"))
    held = [c for c in records.covers(session, old.id) if c.released_at is None]
    covered = [r for c in held if (r := risks.get_risk(session, c.risk_id, for_update=True)).status == RiskStatus.open]
    if not covered:
        raise Conflict(f"Every risk {old.reference} holds is closed; there is nothing to extend.")
    plans = {c.risk_id: c.treatment_before for c in held}
    new = _new_request(session, covered, plans, data, who, old.id)
    records.record_history(session, old, "extension_requested", who, records.record_state(old), new.reference)
    return new


def _new_request(
    session: Session, covered: Sequence[Risk], plans: dict[int, Treatment],
    data: AcceptanceRequest | AcceptanceExtension, who: Principal, extends_id: int | None,
) -> AcceptanceRecord:  # fmt: skip
    acceptance = AcceptanceRecord(
        requested_by=who.name, requested_by_identity=records.identity(who), justification=data.justification,
        conditions=data.conditions, expires_at=data.expires_at.astimezone(UTC), extends_id=extends_id,
    )  # fmt: skip
    session.add(acceptance)
    session.flush()
    for risk in covered:
        session.add(AcceptanceRisk(acceptance_id=acceptance.id, risk_id=risk.id, treatment_before=plans[risk.id]))
    _keep_states(session, acceptance, standing(session, covered), None)
    records.record_history(session, acceptance, "requested", who, {}, data.justification)
    ids = [risk.id for risk in covered]
    until = f"{acceptance.expires_at:%Y-%m-%d}"
    records.note_on_risks(session, ids, "acceptance_requested", who, f"{acceptance.reference} until {until}")
    extra = {"extends": reference(extends_id)} if extends_id is not None else {}
    records.announce(session, "requested", acceptance, [r.reference for r in covered], who, **extra)
    session.flush()
    return acceptance


def _keep_states(session: Session, acceptance: AcceptanceRecord, found: Standing, decision_id: int | None) -> None:
    now = utcnow()
    for risk, spec, limits in found:
        state = records.state_of(records.risk_columns(risk), spec, limits)
        session.add(AcceptanceState(acceptance_id=acceptance.id, risk_id=risk.id, decision_id=decision_id, at=now,
                                    **state))  # fmt: skip


# ---- decisions ----


def approve(session: Session, acceptance: AcceptanceRecord, data: Approval, who: Principal, settings: Settings) -> None:
    """An approval, by anyone but the requester: an admin's above a category's appetite; beyond its tolerance
    two, by two people, one of them an admin (the first leaves the request awaiting the second)."""
    _require(acceptance, AcceptanceStatus.requested, "approved")
    if acceptance.expires_at <= utcnow():
        raise Conflict(
            f"The proposed expiry of {acceptance.reference} has passed; reject it and request the acceptance again."
        )
    me = records.identity(who)
    if me == acceptance.requested_by_identity:
        raise Forbidden("Four eyes: whoever requested an acceptance cannot approve it.")
    given = decisions(session, acceptance.id, DecisionKind.approve)
    if any(d.identity == me for d in given):
        raise Forbidden(f"You approved {acceptance.reference} already; the second approval must be someone else's.")
    covered = _open_risks(session, acceptance)
    _check_free(session, acceptance, covered)
    found = standing(session, covered)
    needed, admin = approvals_needed(found)
    final = len(given) + 1 >= needed
    if final and admin and not (who.may(Role.admin) or any(d.role == Role.admin for d in given)):
        raise Forbidden(
            f"{acceptance.reference} covers a risk above its category's appetite"
            + (": one of its two approvals must be an admin's." if needed == 2 else "; only an admin may approve it.")
        )
    decision = _decide(session, acceptance, DecisionKind.approve, data.comment, who, found)
    before = records.record_state(acceptance)
    refs = [risk.reference for risk in covered]
    if not final:
        records.touch(session, acceptance)
        note = f"1 of {needed} approvals, by {who.name}: a risk is beyond its category's tolerance"
        records.record_history(session, acceptance, "approval_given", who, before, note)
        records.announce(session, "awaiting_second_approval", acceptance, refs, who, approved_by=[who.name])
        return
    approvers = [d.decided_by for d in given] + [decision.decided_by]
    acceptance.status, acceptance.approved_at = AcceptanceStatus.approved, utcnow()
    records.touch(session, acceptance)
    for cover in records.covers(session, acceptance.id):
        if cover.risk_id not in {risk.id for risk in covered}:  # closed since the request: not accepted
            cover.released_at, cover.released_reason = utcnow(), "closed before the approval"
            session.add(cover)
    old = session.get(AcceptanceRecord, acceptance.extends_id) if acceptance.extends_id is not None else None
    # An extension takes over from the acceptance it extends, unless that ended meanwhile.
    if old is not None and lock(session, old).status == AcceptanceStatus.approved:
        _supersede(session, old, acceptance, who)
    for risk in covered:
        before_risk = history.risk_state(risk)
        risk.treatment = Treatment.accept
        risk.acceptance_approver = records.approvers_text(approvers)
        risk.acceptance_expires_at = acceptance.expires_at
        _touch(session, risk)
        note = f"{acceptance.reference} approved until {acceptance.expires_at:%Y-%m-%d}"
        history.record(session, risk, "acceptance_approved", who, before_risk, settings, note=note)
    scheduler.plan(session, records.notices(acceptance.id, acceptance.expires_at, settings))
    records.record_history(session, acceptance, "approved", who, before, data.comment or None)
    records.announce(session, "approved", acceptance, refs, who, approved_by=approvers, comment=data.comment)
    session.flush()


def reject(session: Session, acceptance: AcceptanceRecord, data: Refusal, who: Principal, settings: Settings) -> None:
    """A request refused, saying why (its requester may withdraw it so too); an extension's refusal leaves the
    acceptance it would extend in force."""
    _require(acceptance, AcceptanceStatus.requested, "rejected")
    covered = _covered_risks(session, acceptance)
    _decide(session, acceptance, DecisionKind.reject, data.comment, who, standing(session, covered))
    before = records.record_state(acceptance)
    acceptance.status, acceptance.ended_at = AcceptanceStatus.rejected, utcnow()
    records.touch(session, acceptance)
    records.record_history(session, acceptance, "rejected", who, before, data.comment)
    records.note_on_risks(
        session, [r.id for r in covered], "acceptance_rejected", who, f"{acceptance.reference}: {data.comment}"
    )
    records.announce(session, "rejected", acceptance, [r.reference for r in covered], who, comment=data.comment)
    session.flush()


def revoke(session: Session, acceptance: AcceptanceRecord, data: Refusal, who: Principal, settings: Settings) -> None:
    """An acceptance in force ended before its expiry, by an admin or one of its approvers (who recorded it, for
    one approved outside riskops)."""
    _require(acceptance, AcceptanceStatus.approved, "revoked")
    approvers = {d.identity for d in decisions(session, acceptance.id, DecisionKind.approve)}
    if not who.may(Role.admin) and records.identity(who) not in approvers:
        raise Forbidden(f"Only an admin or an approver of {acceptance.reference} may revoke it.")
    held = _held_risks(session, acceptance)
    _decide(session, acceptance, DecisionKind.revoke, data.comment, who, standing(session, held))
    end(session, acceptance, AcceptanceStatus.revoked, who, settings, data.comment)


def end(
    session: Session, acceptance: AcceptanceRecord, status: AcceptanceStatus, who: Principal, settings: Settings,
    note: str,
) -> None:  # fmt: skip
    """An acceptance in force ends (revoked or expired): each open risk it held goes back to the treatment it had
    before (its plan), and is asked to be reassessed. Closed risks stay as they were."""
    before = records.record_state(acceptance)
    held = [c for c in records.covers(session, acceptance.id) if c.released_at is None]
    reopened = []
    for cover in held:
        cover.released_at, cover.released_reason = utcnow(), str(status)
        session.add(cover)
        risk = risks.get_risk(session, cover.risk_id, for_update=True)
        if risk.status != RiskStatus.open:
            continue
        before_risk = history.risk_state(risk)
        risk.treatment = cover.treatment_before
        risk.acceptance_approver = risk.acceptance_expires_at = None
        _touch(session, risk)
        history.record(session, risk, f"acceptance_{status}", who, before_risk, settings,
                       note=f"{acceptance.reference} {status}: {note}")  # fmt: skip
        reopened.append(risk)
    acceptance.status, acceptance.ended_at = status, utcnow()
    records.touch(session, acceptance)
    if status != AcceptanceStatus.expired:  # an expiry is its notice firing now, after its warning
        scheduler.cancel(session, "acceptance", acceptance.id, records.NOTICE_KINDS)
    records.record_history(session, acceptance, str(status), who, before, note)
    reason = f"Acceptance {acceptance.reference} {status}"
    risks.request_reassessment(session, reopened, reason, who, settings, extra={"acceptance": acceptance.reference})
    refs = [risk_reference(c.risk_id) for c in held]
    records.announce(session, str(status), acceptance, refs, who, comment=note)
    session.flush()


def _supersede(session: Session, old: AcceptanceRecord, new: AcceptanceRecord, who: Principal) -> None:
    """The acceptance an approved extension takes over from: its risks move to the new one as they are."""
    before = records.record_state(old)
    held = [c for c in records.covers(session, old.id) if c.released_at is None]
    for cover in held:
        cover.released_at, cover.released_reason = utcnow(), f"extended by {new.reference}"
        session.add(cover)
    comment = f"Extended by {new.reference} until {new.expires_at:%Y-%m-%d}"
    _decide(session, old, DecisionKind.extend, comment, who, [])
    old.status, old.ended_at = AcceptanceStatus.superseded, utcnow()
    records.touch(session, old)
    scheduler.cancel(session, "acceptance", old.id, records.NOTICE_KINDS)
    records.record_history(session, old, "superseded", who, before, comment)
    records.announce(session, "superseded", old, [risk_reference(c.risk_id) for c in held], who, by=new.reference)


def _decide(
    session: Session, acceptance: AcceptanceRecord, kind: DecisionKind, comment: str, who: Principal,
    found: Standing,
) -> AcceptanceDecision:  # fmt: skip
    decision = AcceptanceDecision(
        acceptance_id=acceptance.id, kind=kind, decided_by=who.name, identity=records.identity(who),
        role=str(who.role), comment=comment,
    )  # fmt: skip
    session.add(decision)
    session.flush()
    _keep_states(session, acceptance, found, decision.id)
    return decision


def _require(acceptance: AcceptanceRecord, status: AcceptanceStatus, done: str) -> None:
    if acceptance.status != status:
        raise InvalidTransition(
            f"Acceptance {acceptance.reference} is {acceptance.status}; it can be {done} only while {status}."
        )


def _covered_risks(session: Session, acceptance: AcceptanceRecord) -> list[Risk]:
    return [risks.get_risk(session, c.risk_id, for_update=True) for c in records.covers(session, acceptance.id)]


def _open_risks(session: Session, acceptance: AcceptanceRecord) -> list[Risk]:
    """The open risks a request covers, locked; none left is a conflict."""
    covered = [risk for risk in _covered_risks(session, acceptance) if risk.status == RiskStatus.open]
    if not covered:
        raise Conflict(f"Every risk {acceptance.reference} covers is closed; nothing is left to decide on.")
    return covered


def _held_risks(session: Session, acceptance: AcceptanceRecord) -> list[Risk]:
    held = [c for c in records.covers(session, acceptance.id) if c.released_at is None]
    return [risks.get_risk(session, c.risk_id, for_update=True) for c in held]


def _check_free(session: Session, acceptance: AcceptanceRecord, covered: Sequence[Risk]) -> None:
    """No other acceptance holds these risks (but the one this extends): one acceptance in force per risk."""
    for risk_id, (_, other) in sorted(records.in_force(session, [r.id for r in covered]).items()):
        if other.id != acceptance.extends_id:
            raise Conflict(
                f"{risk_reference(risk_id)} is accepted under {other.reference} now; reject {acceptance.reference} and "
                f"extend {other.reference} instead."
            )


def _touch(session: Session, risk: Risk) -> None:
    risk.updated_at = utcnow()
    risk.version += 1
    session.add(risk)


def _bad_risk(position: int, message: str) -> Unprocessable:
    return Unprocessable(f"risks[{position}]: {message}.", errors=[field_error(("body", "risks", position), message)])

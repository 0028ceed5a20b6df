"""Risks linked to the processes and assets they threaten: set, added and removed. Each change is in the risk's
history (with the risk.updated event a change to a risk announces) and in each process's or asset's. Callers
commit."""

import hashlib
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.continuity import service
from riskops.continuity.models import (
    Asset,
    BusinessProcess,
    RiskAsset,
    RiskProcess,
    Standing,
)
from riskops.db import table_of
from riskops.errors import InvalidTransition, NotFound, PreconditionFailed, Unprocessable, field_error, stale
from riskops.risks import history
from riskops.risks import service as risks
from riskops.risks.models import Risk, RiskStatus

PLURAL: dict[service.Kind, str] = {"process": "processes", "asset": "assets"}


def risk_for_change(session: Session, ref: str) -> Risk:
    """The risk, locked so that its links change one request at a time; a closed risk's links stay as they were."""
    risk = risks.get_risk(session, risks.parse_risk_ref(ref), for_update=True)
    if risk.status != RiskStatus.open:
        raise InvalidTransition(
            f"Risk {risk.reference} is closed; reopen it before changing its links.", allowed=["reopen"]
        )
    return risk


def linked(session: Session, kind: service.Kind, risk_id: int) -> list[Any]:
    """The processes or assets linked to the risk, by id."""
    if kind == "process":
        query: Any = select(BusinessProcess).join(RiskProcess, col(RiskProcess.process_id) == col(BusinessProcess.id))
        query = query.where(RiskProcess.risk_id == risk_id).order_by(col(BusinessProcess.id))
    else:
        query = select(Asset).join(RiskAsset, col(RiskAsset.asset_id) == col(Asset.id))
        query = query.where(RiskAsset.risk_id == risk_id).order_by(col(Asset.id))
    return list(session.exec(query))


def etag(rows: list[Any]) -> str:
    """The version of a risk's set of links: it changes whenever a link comes or goes."""
    return f'"{hashlib.sha256(",".join(row.reference for row in rows).encode()).hexdigest()[:16]}"'


def set_links(
    session: Session, kind: service.Kind, risk: Risk, refs: list[str], who: Principal, settings: Settings,
    if_match: str | None,
) -> list[Any]:  # fmt: skip
    """The risk's links of this kind become exactly `refs`; its links as they now are."""
    current = linked(session, kind, risk.id)
    if stale(if_match, etag(current)):
        raise PreconditionFailed(
            f"The {PLURAL[kind]} linked to {risk.reference} have changed since you read them; read them again."
        )
    found = service.find_all(session, kind, refs)
    kept = {row.id for row in current}
    wanted: dict[int, Any] = {}
    errors = []
    for i, ref in enumerate(refs):
        row: Any = found.get(ref)
        problem = _problem(kind, ref, row, kept)
        if problem is None and row.id in wanted:
            problem = f"{row.reference} is named twice"
        if problem is not None:
            errors.append(field_error(("body", PLURAL[kind], i), problem))
        else:
            wanted[row.id] = row
    if errors:
        raise Unprocessable(f"Some {PLURAL[kind]} cannot be linked; nothing was changed.", errors=errors)
    _change(session, kind, risk, current, sorted(wanted.values(), key=lambda r: r.id), who, settings)
    return linked(session, kind, risk.id)


def add_link(
    session: Session, kind: service.Kind, risk: Risk, ref: str, who: Principal, settings: Settings
) -> tuple[list[Any], bool]:
    """Link one more; the links as they now are, and whether this one is new (a repeat changes nothing)."""
    current = linked(session, kind, risk.id)
    row: Any = service.find(session, kind, ref)
    problem = _problem(kind, ref, row, {r.id for r in current})
    if problem is not None:
        raise Unprocessable(f"{kind}: {problem}.", errors=[field_error(("body", kind), problem)])
    if row.id in {r.id for r in current}:
        return current, False
    _change(session, kind, risk, current, sorted([*current, row], key=lambda r: r.id), who, settings)
    return linked(session, kind, risk.id), True


def remove_link(session: Session, kind: service.Kind, risk: Risk, ref: str, who: Principal, settings: Settings) -> None:
    current = linked(session, kind, risk.id)
    row = service.find(session, kind, ref)
    if row is None or row.id not in {r.id for r in current}:
        raise NotFound(f"No {kind} '{ref}' is linked to {risk.reference}.")
    _change(session, kind, risk, current, [r for r in current if r.id != row.id], who, settings)


def _problem(kind: service.Kind, ref: str, row: BusinessProcess | Asset | None, kept: set[int]) -> str | None:
    if row is None:
        return f"no {kind} has the reference or key '{ref}'"
    if row.status == Standing.archived and row.id not in kept:
        return f"{row.reference} is archived; restore it first"
    return None


def _change(
    session: Session, kind: service.Kind, risk: Risk, current: list[Any], wanted: list[Any], who: Principal,
    settings: Settings,
) -> None:  # fmt: skip
    before, after = {r.id for r in current}, {r.id for r in wanted}
    if before == after:
        return
    model: Any = RiskProcess if kind == "process" else RiskAsset
    column = f"{kind}_id"
    gone = sorted(before - after)
    if gone:
        session.execute(delete(model).where(col(model.risk_id) == risk.id, col(getattr(model, column)).in_(gone)))
    added = sorted(after - before)
    if added:
        now = utcnow()
        rows = [{"risk_id": risk.id, column: i, "linked_by": who.name, "linked_at": now} for i in added]
        session.execute(insert(table_of(model)), rows)
    changes = {PLURAL[kind]: {"old": [r.reference for r in current], "new": [r.reference for r in wanted]}}
    history.record(session, risk, f"{PLURAL[kind]}.changed", who, {}, settings, changes=changes)
    entries: list[tuple[Any, str, str | None, str | None]]
    entries = [(row, "risk.linked", None, risk.reference) for row in wanted if row.id not in before]
    entries += [(row, "risk.unlinked", risk.reference, None) for row in current if row.id not in after]
    for row, action, old, new in entries:
        audit.service.record(
            session, entity_type=kind, entity_id=row.id, action=action, actor=who.name,
            changes={"risk": {"old": old, "new": new}},
        )  # fmt: skip
    session.flush()

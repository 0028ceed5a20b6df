"""Appetite and tolerance: where a level stands against its category's limits (the one home of that rule), and
admins setting the limits, which re-places every open risk of the category. Callers commit."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.errors import NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.risks import history
from riskops.risks.appetite.models import AppetiteIn, CategoryAppetite
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec
from riskops.risks.models import Risk, RiskStatus, category_key


@dataclass(frozen=True)
class Limits:
    """A category's limits on one matrix: `appetite` and `tolerance` are level names of that matrix."""

    appetite: str
    tolerance: str | None

    def outside(self, spec: MatrixSpec, level: str) -> bool:
        """Above the appetite: the risk needs a treatment whose target is within it, or an approved acceptance."""
        return spec.rank(level) > spec.rank(self.appetite)

    def beyond_tolerance(self, spec: MatrixSpec, level: str) -> bool:
        """Above the tolerance: escalated to an admin, and accepted only on two approvals."""
        return self.tolerance is not None and spec.rank(level) > spec.rank(self.tolerance)


def limits_on(spec: MatrixSpec, row: CategoryAppetite | None) -> Limits:
    """A category's limits on `spec`: its own where they name levels of `spec` (a risk may be scored on an older
    matrix whose levels differ), else the matrix's appetite with no tolerance."""
    names = {level.name for level in spec.levels}
    if row is None or row.appetite not in names:
        return Limits(spec.appetite, None)
    return Limits(row.appetite, row.tolerance if row.tolerance in names else None)


@dataclass(frozen=True)
class Appetites:
    """Every category's limits, read once: what a batch of new risks (an import) is placed against."""

    rows: Mapping[str, CategoryAppetite]

    def of(self, category: str, spec: MatrixSpec) -> Limits:
        return limits_on(spec, self.rows.get(category_key(category)))


def load(session: Session) -> Appetites:
    return Appetites({row.category_key: row for row in session.exec(select(CategoryAppetite))})


def limits_for(session: Session, category: str, spec: MatrixSpec) -> Limits:
    return limits_on(spec, session.get(CategoryAppetite, category_key(category)))


def place(risk: Risk, spec: MatrixSpec, limits: Limits) -> None:
    """The risk's standing against its limits, stored so that lists filter on it."""
    risk.outside_appetite = limits.outside(spec, risk.level)
    risk.beyond_tolerance = limits.beyond_tolerance(spec, risk.level)
    target = risk.target_level
    risk.target_within_appetite = target is not None and spec.has_level(target) and not limits.outside(spec, target)


def list_limits(session: Session) -> list[CategoryAppetite]:
    return list(session.exec(select(CategoryAppetite).order_by(col(CategoryAppetite.category_key))))


def get_limits(session: Session, category: str) -> CategoryAppetite:
    row = session.get(CategoryAppetite, category_key(category))
    if row is None:
        raise NotFound(f"Category '{category}' has no appetite of its own; it takes the matrix's.")
    return row


def set_limits(
    session: Session, category: str, data: AppetiteIn, who: Principal, settings: Settings
) -> CategoryAppetite:
    """Set a category's appetite and tolerance (levels of the current matrix), with history and an
    appetite.changed event; every open risk of the category is placed again against them."""
    category = _category(category)
    spec = matrices.current(session).parsed()
    _check(spec, data)
    key = category_key(category)
    row = session.get(CategoryAppetite, key, with_for_update=True)
    before = _state(row)
    if row is None:
        row = CategoryAppetite(category_key=key, category=category, appetite=data.appetite, set_by=who.name)
    else:
        row.version += 1
    row.appetite, row.tolerance, row.rationale = data.appetite, data.tolerance, data.rationale
    row.set_by, row.set_at = who.name, utcnow()
    session.add(row)
    session.flush()
    _changed(session, key, "set", before, _state(row), who, data.rationale)
    _replace(session, key, who, settings)
    return row


def clear_limits(session: Session, category: str, rationale: str, who: Principal, settings: Settings) -> None:
    """The category takes the matrix's appetite again."""
    row = get_limits(session, category)
    before = _state(row)
    session.delete(row)
    session.flush()
    _changed(session, row.category_key, "cleared", before, {}, who, rationale)
    _replace(session, row.category_key, who, settings)


def _category(category: str) -> str:
    trimmed = category.strip()
    if not trimmed or len(trimmed) > 100:
        raise Unprocessable(
            "A category is 1 to 100 characters.", errors=[field_error(("path", "category"), "1 to 100 characters")]
        )
    return trimmed


def _check(spec: MatrixSpec, data: AppetiteIn) -> None:
    names = [level.name for level in spec.levels]
    errors = [
        field_error(("body", name), f"must be a level of the current matrix: {', '.join(names)}")
        for name in ("appetite", "tolerance")
        if getattr(data, name) is not None and getattr(data, name) not in names
    ]
    if not errors and data.tolerance is not None and spec.rank(data.tolerance) < spec.rank(data.appetite):
        errors.append(field_error(("body", "tolerance"), "must be at or above the appetite"))
    if errors:
        raise Unprocessable(f"{errors[0]['field']}: {errors[0]['message']}", errors=errors)


def _state(row: CategoryAppetite | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {"category": row.category, "appetite": row.appetite, "tolerance": row.tolerance}


def _changed(
    session: Session, key: str, action: str, before: dict[str, Any], after: dict[str, Any], who: Principal,
    rationale: str,
) -> None:  # fmt: skip
    changes = audit.service.diff(before, after)
    audit.service.record(
        session, entity_type="appetite", entity_id=key, action=action, actor=who.name, changes=changes,
        note=rationale or None,
    )  # fmt: skip
    events.emit(session, "appetite.changed", "appetite", key, {"category": key, "actor": who.name, "changes": changes})


def _replace(session: Session, key: str, who: Principal, settings: Settings) -> None:
    """Every open risk of the category against its new limits; those whose standing moved get a history entry."""
    appetites = load(session)
    risks = session.exec(
        select(Risk)
        .where(func.lower(col(Risk.category)) == key, Risk.status == RiskStatus.open)
        .order_by(col(Risk.id))
        .with_for_update()
    ).all()
    specs: dict[int, MatrixSpec] = {}
    moved = []
    for risk in risks:
        spec = specs.setdefault(risk.matrix_version, matrices.get(session, risk.matrix_version).parsed())
        before = history.risk_state(risk)
        place(risk, spec, appetites.of(risk.category, spec))
        if history.risk_state(risk) != before:
            risk.updated_at, risk.version = utcnow(), risk.version + 1
            session.add(risk)
            moved.append((risk, before))
    outbox = events.Outbox()
    history.record_all(session, moved, "appetite_changed", who, settings, outbox, note=f"Appetite of '{key}' changed")
    events.record(session, outbox)
    session.flush()

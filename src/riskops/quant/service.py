"""Quantified loss's writes: a risk's estimate, a treatment action's effect on it and the loss tolerance, each
checked (every refusal names its field), versioned where it is edited in place, and recorded in the history.
Callers own the transaction."""

from typing import Any

from sqlmodel import Session, col, select

from riskops import audit
from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.db import get_row, storable
from riskops.errors import NotFound, PreconditionFailed, Unprocessable, field_error, stale
from riskops.events import service as events
from riskops.quant import simulation
from riskops.quant.models import (
    MAX_FREQUENCY,
    MAX_LOSS,
    Change,
    EffectIn,
    EstimateIn,
    LossEffect,
    LossEstimate,
    LossTolerance,
    Range,
    ToleranceIn,
)
from riskops.risks import service as risks
from riskops.risks.models import Risk
from riskops.treatments.models import TreatmentAction

PERT_KEYS = ("min", "most_likely", "max")
INTERVAL_KEYS = ("low", "high")


def _refuse(loc: tuple[str | int, ...], message: str) -> Unprocessable:
    error = field_error(loc, message)
    return Unprocessable(f"{error['field']}: {message}", errors=[error])


def checked_range(value: Range, loc: tuple[str, ...], bound: float) -> dict[str, float]:
    """A range in one of its two forms, ordered and bounded; what is stored and simulated."""
    given = value.model_dump(exclude_none=True)
    if set(given) == set(PERT_KEYS):
        least, likely, most = (given[k] for k in PERT_KEYS)
        if not least <= likely:
            raise _refuse((*loc, "most_likely"), "must be at least min")
        if not likely <= most:
            raise _refuse((*loc, "max"), "must be at least most_likely")
    elif set(given) == set(INTERVAL_KEYS):
        if not given["low"] < given["high"]:
            raise _refuse((*loc, "high"), "must be above low")
    else:
        raise _refuse(loc, "give min, most_likely and max, or a 90 % interval's low and high (not both, not part)")
    for key, number in given.items():
        if number > bound:
            raise _refuse((*loc, key), f"must be at most {bound:g}")
    return {key: float(number) for key, number in given.items()}


def shape(stored: dict[str, float]) -> simulation.Shape:
    if "low" in stored:
        return simulation.Interval(stored["low"], stored["high"])
    return simulation.Pert(stored["min"], stored["most_likely"], stored["max"])


def to_estimate(inputs: dict[str, Any]) -> simulation.Estimate:
    parts = [inputs["magnitude"]] if inputs.get("magnitude") else [inputs["primary"], inputs.get("secondary")]
    return simulation.Estimate(shape(inputs["frequency"]), tuple(shape(p) for p in parts if p))


def _inputs(data: EstimateIn) -> dict[str, Any]:
    if data.magnitude is not None and (data.primary is not None or data.secondary is not None):
        raise _refuse(("body", "magnitude"), "give the magnitude whole, or primary (and secondary) apart, not both")
    if data.magnitude is None and data.primary is None:
        where = ("body", "primary") if data.secondary is not None else ("body", "magnitude")
        raise _refuse(where, "required: the loss per event (magnitude, or primary and secondary)")
    out: dict[str, Any] = {"frequency": checked_range(data.frequency, ("body", "frequency"), MAX_FREQUENCY)}
    for name in ("magnitude", "primary", "secondary"):
        value = getattr(data, name)
        out[name] = None if value is None else checked_range(value, ("body", name), MAX_LOSS)
    return out


# ---- a risk's estimate ----


def risk_for(session: Session, ref: str, *, for_update: bool = False) -> Risk:
    return risks.get_risk(session, risks.parse_risk_ref(ref), for_update=for_update)


def estimate_of(session: Session, risk: Risk) -> LossEstimate | None:
    return session.exec(select(LossEstimate).where(col(LossEstimate.risk_id) == risk.id)).first()


def get_estimate(session: Session, risk: Risk) -> LossEstimate:
    found = estimate_of(session, risk)
    if found is None:
        raise NotFound(f"Risk {risk.reference} has no loss estimate yet (PUT one).")
    return found


def etag(row: LossEstimate | LossEffect) -> str:
    return f'"{row.version}"'


def check_if_match(row: LossEstimate | LossEffect | None, if_match: str | None, what: str) -> None:
    """Optimistic concurrency, as for risks: a change naming an older version is refused, not merged."""
    if row is not None and stale(if_match, etag(row)):
        raise PreconditionFailed(
            f"The {what} has changed since you read it (now version {row.version}); read it again.",
            current_version=row.version,
        )


def _state(row: LossEstimate | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"currency": row.currency, **row.inputs, "rationale": row.rationale}


def put_estimate(
    session: Session, risk: Risk, data: EstimateIn, who: Principal, settings: Settings, if_match: str | None
) -> LossEstimate:
    row = estimate_of(session, risk)
    check_if_match(row, if_match, f"loss estimate of {risk.reference}")
    inputs = _inputs(data)
    before = _state(row)
    if row is None:
        row = LossEstimate(risk_id=risk.id, currency="", inputs={}, updated_by=who.name, version=0)
    row.currency, row.inputs, row.rationale = data.currency or settings.currency, inputs, data.rationale
    if _state(row) == before:
        return row  # nothing changed: no new version, no history entry
    row.version += 1
    row.updated_at, row.updated_by = utcnow(), who.name
    session.add(row)
    session.flush()
    _history(session, risk, "loss_estimate.set", who, {"loss_estimate": {"old": before, "new": _state(row)}})
    events.emit(session, "loss.estimate_set", "risk", risk.reference, _event(risk, who, _state(row)))
    return row


def delete_estimate(session: Session, risk: Risk, who: Principal, if_match: str | None) -> None:
    row = get_estimate(session, risk)
    check_if_match(row, if_match, f"loss estimate of {risk.reference}")
    _history(session, risk, "loss_estimate.deleted", who, {"loss_estimate": {"old": _state(row), "new": None}})
    events.emit(session, "loss.estimate_deleted", "risk", risk.reference, _event(risk, who, None))
    session.delete(row)


def _event(risk: Risk, who: Principal, estimate: dict[str, Any] | None) -> dict[str, Any]:
    return {"reference": risk.reference, "title": risk.title, "estimate": estimate, "actor": who.name}


def _history(session: Session, risk: Risk, action: str, who: Principal, changes: dict[str, Any]) -> None:
    """In the risk's history (GET /risks/{ref}/history), beside its other changes."""
    audit.service.record(
        session, entity_type="risk", entity_id=risk.id, action=action, actor=who.name, changes=changes
    )  # fmt: skip


# ---- a treatment action's effect ----


def action_for(session: Session, action_id: int, *, for_update: bool = False) -> tuple[TreatmentAction, Risk]:
    if not storable(action_id):
        raise NotFound(f"Treatment action {action_id} does not exist.")
    action = get_row(session, TreatmentAction, action_id, "Treatment action")
    return action, risks.get_risk(session, action.risk_id, for_update=for_update)


def effect_of(session: Session, action: TreatmentAction) -> LossEffect | None:
    return session.exec(select(LossEffect).where(col(LossEffect.action_id) == action.id)).first()


def get_effect(session: Session, action: TreatmentAction) -> LossEffect:
    found = effect_of(session, action)
    if found is None:
        raise NotFound(f"Treatment action {action.id} has no loss effect yet (PUT one).")
    return found


def _change(value: Change | None, loc: tuple[str, ...], bound: float) -> dict[str, Any] | None:
    if value is None:
        return None
    if (value.reduction_percent is None) == (value.range is None):
        raise _refuse(loc, "give reduction_percent or a new range, one of them")
    if value.range is not None:
        return {"range": checked_range(value.range, (*loc, "range"), bound)}
    return {"reduction_percent": value.reduction_percent}


def put_effect(
    session: Session, action: TreatmentAction, risk: Risk, data: EffectIn, who: Principal, if_match: str | None
) -> LossEffect:
    row = effect_of(session, action)
    check_if_match(row, if_match, f"loss effect of treatment action {action.id}")
    change = {
        "frequency": _change(data.frequency, ("body", "frequency"), MAX_FREQUENCY),
        "magnitude": _change(data.magnitude, ("body", "magnitude"), MAX_LOSS),
    }
    if change == {"frequency": None, "magnitude": None}:
        raise _refuse(("body",), "give the change in frequency, in magnitude, or both")
    before = row.change if row else None
    if row is None:
        row = LossEffect(action_id=action.id, change={}, updated_by=who.name, version=0)
    if change == before:
        return row
    row.change, row.version = change, row.version + 1
    row.updated_at, row.updated_by = utcnow(), who.name
    session.add(row)
    session.flush()
    _history(session, risk, "loss_effect.set", who, {f"loss_effects.{action.id}": {"old": before, "new": change}})
    return row


def delete_effect(session: Session, action: TreatmentAction, risk: Risk, who: Principal, if_match: str | None) -> None:
    row = get_effect(session, action)
    check_if_match(row, if_match, f"loss effect of treatment action {action.id}")
    changes = {f"loss_effects.{action.id}": {"old": row.change, "new": None}}
    _history(session, risk, "loss_effect.deleted", who, changes)
    session.delete(row)


def applied(estimate: simulation.Estimate, changes: list[dict[str, Any]]) -> simulation.Estimate:
    """The estimate after the changes, in order: a new range replaces, percentages compose multiplicatively."""
    frequency, magnitude = estimate.frequency, estimate.magnitude
    frequency_factor, magnitude_factor = estimate.frequency_factor, estimate.magnitude_factor
    for change in changes:
        if (f := change.get("frequency")) is not None:
            if "range" in f:
                frequency = shape(f["range"])
            else:
                frequency_factor *= 1 - f["reduction_percent"] / 100
        if (m := change.get("magnitude")) is not None:
            if "range" in m:
                magnitude = (shape(m["range"]),)
            else:
                magnitude_factor *= 1 - m["reduction_percent"] / 100
    return simulation.Estimate(frequency, magnitude, frequency_factor, magnitude_factor)


# ---- the loss tolerance ----


def tolerance(session: Session) -> LossTolerance | None:
    return session.exec(select(LossTolerance).order_by(col(LossTolerance.id).desc()).limit(1)).first()


def set_tolerance(session: Session, data: ToleranceIn, who: Principal) -> LossTolerance:
    points = sorted(data.points, key=lambda p: p.loss)
    seen: set[float] = set()
    for position, point in enumerate(data.points):
        if point.loss in seen:
            raise _refuse(("body", "points", position, "loss"), "each loss appears once")
        seen.add(point.loss)
    for smaller, larger in zip(points, points[1:], strict=False):
        if larger.probability > smaller.probability:
            position = data.points.index(larger)
            raise _refuse(
                ("body", "points", position, "probability"),
                f"a larger loss cannot be allowed a larger chance (over {smaller.loss:g}: {smaller.probability:g})",
            )
    before = tolerance(session)
    row = LossTolerance(
        currency=data.currency, points=[p.model_dump() for p in points], set_by=who.name
    )  # fmt: skip
    session.add(row)
    session.flush()
    old = {"currency": before.currency, "points": before.points} if before else None
    audit.service.record(
        session, entity_type="loss_tolerance", entity_id=row.id, action="loss_tolerance.set", actor=who.name,
        changes={"loss_tolerance": {"old": old, "new": {"currency": row.currency, "points": row.points}}},
    )  # fmt: skip
    announced = {"currency": row.currency, "points": row.points, "actor": who.name}
    events.emit(session, "loss.tolerance_set", "loss_tolerance", str(row.id), announced)
    return row

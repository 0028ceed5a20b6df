"""Quantified loss's figures: a risk's simulation, the aggregate of a scope of risks against the loss tolerance
with the risks that drive a bad year, and what each treatment action is worth. Every run stores its inputs, seed
and figures."""

from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.continuity import graph
from riskops.continuity import service as continuity
from riskops.db import storable
from riskops.errors import Conflict, NotFound, Unprocessable, field_error
from riskops.events import service as events
from riskops.quant import service, simulation
from riskops.quant.models import (
    ActionValue,
    AnalysisFilter,
    LossAnalysis,
    LossEffect,
    LossEstimate,
    LossSimulation,
    TreatmentValue,
)
from riskops.risks import queries as risk_queries
from riskops.risks import service as risks
from riskops.risks.models import Risk, RiskStatus
from riskops.treatments.models import OPEN, ActionStatus, TreatmentAction, cost_of

T = TypeVar("T")
# The most risks one analysis adds up: the register's size with room; the engine's memory does not grow with it.
MAX_RISKS = 50_000
# A treatment value is a read: without a seed it answers the same every time.
DEFAULT_SEED = 0
MAX_SEED = simulation.MAX_SEED
DEFAULT_TRIALS = 10_000  # a snapshot's, as RISKOPS_LOSS_TRIALS's default


def figures_json(figures: simulation.Figures) -> dict[str, Any]:
    out: dict[str, Any] = {"mean": figures.mean, **{f"p{p}": v for p, v in figures.percentiles.items()}}
    out["curve"] = [{"loss": x, "probability": p} for x, p in figures.curve]
    return out


def simulate_risk(
    session: Session, risk: Risk, who: Principal, settings: Settings, trials: int | None, seed: int | None
) -> LossSimulation:
    estimate = service.get_estimate(session, risk)
    trials = trials or settings.loss_trials
    seed = simulation.new_seed() if seed is None else seed
    result = simulation.simulate(service.to_estimate(estimate.inputs), trials, seed)
    row = LossSimulation(
        risk_id=risk.id, currency=estimate.currency, inputs=estimate.inputs, seed=seed, trials=trials, by=who.name,
        figures=figures_json(result),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


# ---- the aggregate ----


def scope_risks(session: Session, wanted: AnalysisFilter) -> list[tuple[Risk, LossEstimate | None]]:
    """The risks a filter names, open ones unless a status is given, each with its estimate if it has one."""
    filters = risk_queries.RiskFilter(
        status=wanted.status or [RiskStatus.open], level=wanted.level, category=wanted.category, owner=wanted.owner
    )
    try:
        risk_queries.check_filter(session, filters)
    except Unprocessable as refused:  # the list's filters are a query's; here they come in the body
        for error in refused.errors or []:
            error.update(field_error(("body", "filter", *error["loc"][1:]), error["message"]))
        raise Unprocessable(refused.detail.replace("query.", "body.filter."), errors=refused.errors) from None
    clauses: list[ColumnElement[bool]] = list(filters.clauses(session, utcnow()))
    if wanted.process:
        threatened: set[int] = set()
        for position, ref in enumerate(wanted.process):
            process = _named(partial(continuity.get_process, session), ref, ("body", "filter", "process", position))
            threats = graph.threats_to_process(session, process, closed=True).risks
            threatened |= {risks.parse_risk_ref(threat.reference) for threat in threats}
        clauses.append(col(Risk.id).in_(sorted(threatened)))
    if wanted.risk:
        numbers = [
            _named(risks.parse_risk_ref, ref, ("body", "filter", "risk", position))
            for position, ref in enumerate(wanted.risk)
        ]
        clauses.append(col(Risk.id).in_(sorted(n for n in numbers if storable(n))))
    rows = session.exec(
        select(Risk, LossEstimate)
        .outerjoin(LossEstimate, col(LossEstimate.risk_id) == col(Risk.id))
        .where(*clauses)
        .order_by(col(Risk.id))
        .limit(MAX_RISKS + 1)
    ).all()
    if len(rows) > MAX_RISKS:
        raise Conflict(f"The filter selects more than {MAX_RISKS} risks; narrow it.")
    return [(risk, estimate) for risk, estimate in rows]


def _named(find: Callable[[str], T], ref: str, loc: tuple[str | int, ...]) -> T:
    """What a reference in the body names; one that names nothing is a 422 naming where it was given."""
    try:
        return find(ref)
    except NotFound as missing:
        raise Unprocessable(missing.detail, errors=[field_error(loc, missing.detail)]) from None


def _verdict(
    tolerance: dict[str, Any] | None, currency: str, total: Any, result: simulation.Aggregate, drivers: Any
) -> dict[str, Any]:
    if tolerance is None:
        return {"within": None, "reason": "No loss tolerance is set (PUT /api/v1/loss-tolerance).", "points": []}
    if tolerance["currency"] != currency:
        reason = f"The loss tolerance is in {tolerance['currency']}, the figures in {currency}."
        return {"within": None, "reason": reason, "points": []}
    points = []
    for point in tolerance["points"]:
        simulated = simulation.exceeding(total, point["loss"])
        breached = simulated > point["probability"]
        points.append({
            "loss": point["loss"], "probability": point["probability"], "simulated": simulated, "breached": breached,
            "excess": simulated - point["probability"], "drivers": drivers(point["loss"]) if breached else [],
        })  # fmt: skip
    return {"within": not any(p["breached"] for p in points), "reason": None, "points": points}


def aggregate(
    session: Session, wanted: AnalysisFilter, currency: str, trials: int, seed: int, *, per_risk: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The figures of a scope in a currency, and the estimates used (with each one's figures if `per_risk`)."""
    used: list[tuple[Risk, LossEstimate]] = []
    not_quantified = []
    for risk, estimate in scope_risks(session, wanted):
        if estimate is None:
            not_quantified.append({"risk": risk.reference, "title": risk.title, "reason": "no loss estimate"})
        elif estimate.currency != currency:
            reason = f"estimated in {estimate.currency}, the figures are in {currency}"
            not_quantified.append({"risk": risk.reference, "title": risk.title, "reason": reason})
        else:
            used.append((risk, estimate))
    current = service.tolerance(session)
    tolerance = {"currency": current.currency, "points": current.points} if current else None
    levels = [p["loss"] for p in tolerance["points"]] if tolerance and tolerance["currency"] == currency else []
    estimates = [service.to_estimate(e.inputs) for _, e in used]
    result, total = simulation.aggregate(estimates, trials, seed, levels)

    def drivers(level: float) -> list[dict[str, Any]]:
        return [
            {"risk": used[d.index][0].reference, "title": used[d.index][0].title, "tail_mean": d.tail_mean,
             "share": d.share}
            for d in result.drivers.get(level, [])
        ]  # fmt: skip

    figures = {
        **figures_json(result.figures), "risks": len(used), "drivers": drivers(result.figures.percentiles[95]),
        "tolerance": _verdict(tolerance, currency, total, result, drivers), "not_quantified": not_quantified,
    }  # fmt: skip
    inputs = [{"risk": r.reference, "currency": e.currency, **e.inputs} for r, e in used]
    for position, (entry, mean) in enumerate(zip(inputs, result.means, strict=True)):
        entry["title"], entry["mean"] = used[position][0].title, mean
        if per_risk:  # the risk's own simulation, with the same trials and seed
            own = simulation.simulate(estimates[position], trials, seed)
            entry.update({"mean": own.mean, **{f"p{p}": v for p, v in own.percentiles.items()}})
    return figures, inputs


def analyse(
    session: Session, wanted: AnalysisFilter, who: Principal, settings: Settings, trials: int | None, seed: int | None
) -> LossAnalysis:
    trials = trials or settings.loss_trials
    seed = simulation.new_seed() if seed is None else seed
    figures, inputs = aggregate(session, wanted, settings.currency, trials, seed)
    row = LossAnalysis(
        scope=wanted.model_dump(), currency=settings.currency, inputs=inputs, seed=seed, trials=trials, by=who.name,
        figures=figures,
    )  # fmt: skip
    session.add(row)
    session.flush()
    verdict = figures["tolerance"]
    data = {
        "id": row.id, "scope": row.scope, "currency": row.currency, "risks": figures["risks"],
        "mean": figures["mean"], "p95": figures["p95"], "within_tolerance": verdict["within"],
        "breached": [p["loss"] for p in verdict["points"] if p["breached"]], "actor": who.name,
    }  # fmt: skip
    events.emit(session, "loss.analysis_completed", "loss_analysis", str(row.id), data)
    return row


def register_figures(session: Session, seed: int, trials: int = DEFAULT_TRIALS) -> dict[str, Any] | None:
    """The open register's aggregate and each quantified risk's figures, for a review snapshot, which knows no
    settings: in the loss tolerance's currency, else the one most estimates are in. None with no estimate."""
    current = service.tolerance(session)
    currency = current.currency if current else _usual_currency(session)
    if currency is None:
        return None
    figures, risks = aggregate(session, AnalysisFilter(), currency, trials, seed, per_risk=True)
    keep = ("risk", "title", "mean", "p50", "p90", "p95", "p99")
    return {
        "currency": currency, "seed": seed, "trials": trials, "figures": figures,
        "risks": [{key: risk[key] for key in keep} for risk in risks],
    }  # fmt: skip


def _usual_currency(session: Session) -> str | None:
    found = session.exec(
        select(LossEstimate.currency, func.count())
        .group_by(col(LossEstimate.currency))
        .order_by(func.count().desc(), col(LossEstimate.currency))
        .limit(1)
    ).first()
    return found[0] if found else None


def get_analysis(session: Session, analysis_id: int) -> LossAnalysis:
    found = session.get(LossAnalysis, analysis_id) if storable(analysis_id) else None
    if found is None:
        raise NotFound(f"Loss analysis {analysis_id} does not exist.")
    return found


# ---- treatment value ----


def _value(
    title: str, action_id: int | None, before: float, after: float, costs: Sequence[TreatmentAction], currency: str
) -> ActionValue:
    """Return on control = (reduction − cost) / cost, the cost taken as one year's spend."""
    reduction = before - after
    priced = [cost_of(a) for a in costs]
    cost: float | None = None
    if not costs or any(c is None for c in priced):
        reason: str | None = "no cost given"
    elif any(c is not None and c.currency != currency for c in priced):
        reason = f"the cost is not in {currency}, the estimate's currency"
    else:
        cost = float(sum((c.amount for c in priced if c is not None), Decimal(0)))
        reason = "the cost is 0: the return has no bound" if cost == 0 else None
    return ActionValue(
        action_id=action_id, title=title, ale_before=before, ale_after=after, reduction=reduction, cost=cost,
        cost_currency=currency if cost is not None else None,
        return_on_control=None if reason or cost is None else (reduction - cost) / cost, reason=reason,
    )  # fmt: skip


def treatment_value(
    session: Session, risk: Risk, settings: Settings, trials: int | None, seed: int | None
) -> TreatmentValue:
    """Each action's (and the open plan's) ALE before and after, on common random numbers: the same seed."""
    estimate = service.get_estimate(session, risk)
    trials = trials or settings.loss_trials
    seed = DEFAULT_SEED if seed is None else seed
    base = service.to_estimate(estimate.inputs)
    before = simulation.simulate(base, trials, seed).mean
    rows = session.exec(
        select(TreatmentAction, LossEffect)
        .join(LossEffect, col(LossEffect.action_id) == col(TreatmentAction.id))
        .where(col(TreatmentAction.risk_id) == risk.id, col(TreatmentAction.status) != ActionStatus.cancelled)
        .order_by(col(TreatmentAction.id))
    ).all()

    def after(changes: list[dict[str, Any]]) -> float:
        return simulation.simulate(service.applied(base, changes), trials, seed).mean

    values = [
        _value(action.title, action.id, before, after([effect.change]), [action], estimate.currency)
        for action, effect in rows
    ]
    open_rows = [(a, e) for a, e in rows if a.status in OPEN]
    plan = None
    if open_rows:
        combined = after([e.change for _, e in open_rows])
        plan = _value("The open plan", None, before, combined, [a for a, _ in open_rows], estimate.currency)
    return TreatmentValue(
        risk=risk.reference, currency=estimate.currency, seed=seed, trials=trials, actions=values, plan=plan
    )

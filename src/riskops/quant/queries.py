"""Quantified loss as the API answers it: an estimate, a simulation, an effect, the tolerance and the analyses,
newest first where there are many."""

from sqlmodel import Session, col, select

from riskops.pagination import decode_id_cursor, id_page
from riskops.quant.models import (
    AnalysisPublic,
    AnalysisSummary,
    EffectPublic,
    LossAnalysis,
    LossEffect,
    LossEstimate,
    LossEstimatePublic,
    LossSimulation,
    LossTolerance,
    SimulationPublic,
    TolerancePublic,
)
from riskops.risks.models import reference


def estimate(row: LossEstimate) -> LossEstimatePublic:
    return LossEstimatePublic(
        risk=reference(row.risk_id), currency=row.currency, frequency=row.inputs["frequency"],
        magnitude=row.inputs.get("magnitude"), primary=row.inputs.get("primary"),
        secondary=row.inputs.get("secondary"), rationale=row.rationale, updated_at=row.updated_at,
        updated_by=row.updated_by, version=row.version,
    )  # fmt: skip


def simulation(row: LossSimulation) -> SimulationPublic:
    return SimulationPublic.model_validate({**row.model_dump(), "risk": reference(row.risk_id)})


def effect(row: LossEffect, risk_id: int) -> EffectPublic:
    return EffectPublic(
        action_id=row.action_id, risk=reference(risk_id), frequency=row.change.get("frequency"),
        magnitude=row.change.get("magnitude"), updated_at=row.updated_at, updated_by=row.updated_by,
        version=row.version,
    )  # fmt: skip


def tolerance(row: LossTolerance) -> TolerancePublic:
    return TolerancePublic.model_validate(row.model_dump())


def analysis(row: LossAnalysis) -> AnalysisPublic:
    return AnalysisPublic.model_validate(row.model_dump(exclude={"inputs"}))


def latest_simulation(session: Session, risk_id: int) -> LossSimulation | None:
    query = select(LossSimulation).where(col(LossSimulation.risk_id) == risk_id)
    return session.exec(query.order_by(col(LossSimulation.id).desc()).limit(1)).first()


def simulations(
    session: Session, risk_id: int, *, cursor: str | None, limit: int
) -> tuple[list[SimulationPublic], str | None]:
    query = select(LossSimulation).where(col(LossSimulation.risk_id) == risk_id)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(LossSimulation.id) < after)
    rows, next_cursor = id_page(
        list(session.exec(query.order_by(col(LossSimulation.id).desc()).limit(limit + 1))), limit
    )
    return [simulation(row) for row in rows], next_cursor


def analyses(session: Session, *, cursor: str | None, limit: int) -> tuple[list[AnalysisSummary], str | None]:
    query = select(LossAnalysis)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(LossAnalysis.id) < after)
    rows, next_cursor = id_page(list(session.exec(query.order_by(col(LossAnalysis.id).desc()).limit(limit + 1))), limit)
    return [
        AnalysisSummary(
            id=r.id,
            scope=r.scope,
            currency=r.currency,
            seed=r.seed,
            trials=r.trials,
            at=r.at,
            by=r.by,
            mean=r.figures["mean"],
            p95=r.figures["p95"],
        )  # fmt: skip
        for r in rows
    ], next_cursor


def tolerance_history(session: Session, *, limit: int = 100) -> list[TolerancePublic]:
    rows = session.exec(select(LossTolerance).order_by(col(LossTolerance.id).desc()).limit(limit))
    return [tolerance(row) for row in rows]

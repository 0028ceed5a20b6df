from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from riskops.auth import Admin, Config, Db, Reader, Writer
from riskops.errors import NotFound, problem_answer
from riskops.pagination import Page
from riskops.quant import analysis, chart, queries, service
from riskops.quant.models import (
    MAX_SEED,
    MAX_TRIALS,
    MIN_TRIALS,
    AnalysisIn,
    AnalysisPublic,
    AnalysisSummary,
    EffectIn,
    EffectPublic,
    EstimateIn,
    LossEstimatePublic,
    SimulationIn,
    SimulationPublic,
    ToleranceIn,
    TolerancePublic,
    TreatmentValue,
)

router = APIRouter(tags=["quantified loss"])

ESTIMATE = "/api/v1/risks/{risk_ref}/loss-estimate"
EFFECT = "/api/v1/treatment-actions/{action_id}/loss-effect"
IfMatch = Annotated[str | None, Header(description="The ETag you read; a stale one gets 412.")]
Limit = Annotated[int, Query(ge=1, le=100)]
SVG = "image/svg+xml"
SVG_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "The loss exceedance curve", "content": {SVG: {"schema": {"type": "string"}}}}
}
NO_CONTENT: dict[str, Any] = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


@router.put(ESTIMATE)
def put_estimate(
    risk_ref: str, data: EstimateIn, db: Db, who: Writer, config: Config, response: Response, if_match: IfMatch = None
) -> LossEstimatePublic:
    """Set the risk's loss estimate: loss events a year and the loss per event (whole, or primary and secondary),
    each as {min, most_likely, max} (beta-PERT) or a calibrated 90 % interval {low, high} (lognormal)."""
    with db.write() as session:
        risk = service.risk_for(session, risk_ref, for_update=True)
        row = service.put_estimate(session, risk, data, who, config, if_match)
        response.headers["ETag"] = service.etag(row)
        return queries.estimate(row)


@router.get(ESTIMATE)
def get_estimate(risk_ref: str, db: Db, _: Reader, response: Response) -> LossEstimatePublic:
    with db.read() as session:
        row = service.get_estimate(session, service.risk_for(session, risk_ref))
        response.headers["ETag"] = service.etag(row)
        return queries.estimate(row)


@router.delete(ESTIMATE, **NO_CONTENT)
def delete_estimate(risk_ref: str, db: Db, who: Writer, if_match: IfMatch = None) -> Response:
    """Remove the estimate; its simulations stay, as a record."""
    with db.write() as session:
        service.delete_estimate(session, service.risk_for(session, risk_ref, for_update=True), who, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(ESTIMATE + "/simulations", status_code=status.HTTP_201_CREATED)
def simulate(risk_ref: str, data: SimulationIn, db: Db, who: Writer, config: Config) -> SimulationPublic:
    """Simulate the estimate (RISKOPS_LOSS_TRIALS trials unless given; a seed is drawn unless given) and keep the
    figures with the inputs and seed: the same inputs, trials and seed give the same figures."""
    with db.write() as session:
        risk = service.risk_for(session, risk_ref)
        return queries.simulation(analysis.simulate_risk(session, risk, who, config, data.trials, data.seed))


@router.get(ESTIMATE + "/simulations")
def list_simulations(
    risk_ref: str, db: Db, _: Reader, cursor: str | None = None, limit: Limit = 20
) -> Page[SimulationPublic]:
    """The risk's simulations, the latest first."""
    with db.read() as session:
        risk = service.risk_for(session, risk_ref)
        items, next_cursor = queries.simulations(session, risk.id, cursor=cursor, limit=limit)
        return Page(items=items, next_cursor=next_cursor)


@router.get(ESTIMATE + "/simulations/latest")
def latest_simulation(risk_ref: str, db: Db, _: Reader) -> SimulationPublic:
    with db.read() as session:
        risk = service.risk_for(session, risk_ref)
        row = queries.latest_simulation(session, risk.id)
        if row is None:
            raise NotFound(f"Risk {risk.reference} has not been simulated yet.")
        return queries.simulation(row)


@router.get(ESTIMATE + "/curve.svg", response_class=Response, responses=SVG_ANSWER)
def risk_curve(risk_ref: str, db: Db, _: Reader) -> Response:
    """The latest simulation's loss exceedance curve."""
    with db.read() as session:
        risk = service.risk_for(session, risk_ref)
        row = queries.latest_simulation(session, risk.id)
        if row is None:
            raise NotFound(f"Risk {risk.reference} has not been simulated yet.")
        curve = [(p["loss"], p["probability"]) for p in row.figures["curve"]]
        title = f"{risk.reference} {risk.title}: loss exceedance"
        return Response(chart.exceedance_svg(curve, [], title=title, currency=row.currency), media_type=SVG)


@router.put(EFFECT)
def put_effect(
    action_id: int, data: EffectIn, db: Db, who: Writer, response: Response, if_match: IfMatch = None
) -> EffectPublic:
    """What the action would change in its risk's estimate: the frequency, the magnitude or both, each as a
    reduction_percent or a new range."""
    with db.write() as session:
        action, risk = service.action_for(session, action_id, for_update=True)
        row = service.put_effect(session, action, risk, data, who, if_match)
        response.headers["ETag"] = service.etag(row)
        return queries.effect(row, risk.id)


@router.get(EFFECT)
def get_effect(action_id: int, db: Db, _: Reader, response: Response) -> EffectPublic:
    with db.read() as session:
        action, risk = service.action_for(session, action_id)
        row = service.get_effect(session, action)
        response.headers["ETag"] = service.etag(row)
        return queries.effect(row, risk.id)


@router.delete(EFFECT, **NO_CONTENT)
def delete_effect(action_id: int, db: Db, who: Writer, if_match: IfMatch = None) -> Response:
    with db.write() as session:
        action, risk = service.action_for(session, action_id, for_update=True)
        service.delete_effect(session, action, risk, who, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


Trials = Annotated[int | None, Query(ge=MIN_TRIALS, le=MAX_TRIALS)]
Seed = Annotated[int | None, Query(ge=0, le=MAX_SEED, description="0 unless given: a read answers the same.")]


@router.get("/api/v1/risks/{risk_ref}/treatment-value")
def treatment_value(
    risk_ref: str, db: Db, _: Reader, config: Config, trials: Trials = None, seed: Seed = None
) -> TreatmentValue:
    """What each treatment action with a loss effect is worth, and the open plan as a whole: the ALE before and
    after (the same seed for both), the reduction a year, and the return on control (reduction − cost) / cost."""
    with db.read() as session:
        risk = service.risk_for(session, risk_ref)
        return analysis.treatment_value(session, risk, config, trials, seed)


@router.post("/api/v1/loss-analyses", status_code=status.HTTP_201_CREATED)
def analyse(data: AnalysisIn, db: Db, who: Writer, config: Config, response: Response) -> AnalysisPublic:
    """The aggregate yearly loss of the risks a filter selects (open ones unless a status is given): the sum of
    their simulated years, taken as independent; against the loss tolerance, with the risks driving a bad year.
    Risks without an estimate (in RISKOPS_CURRENCY) are named in not_quantified."""
    with db.write() as session:
        row = analysis.analyse(session, data.filter, who, config, data.trials, data.seed)
        response.headers["Location"] = f"/api/v1/loss-analyses/{row.id}"
        return queries.analysis(row)


@router.get("/api/v1/loss-analyses")
def list_analyses(db: Db, _: Reader, cursor: str | None = None, limit: Limit = 20) -> Page[AnalysisSummary]:
    with db.read() as session:
        items, next_cursor = queries.analyses(session, cursor=cursor, limit=limit)
        return Page(items=items, next_cursor=next_cursor)


@router.get("/api/v1/loss-analyses/{analysis_id}")
def get_analysis(analysis_id: int, db: Db, _: Reader) -> AnalysisPublic:
    with db.read() as session:
        return queries.analysis(analysis.get_analysis(session, analysis_id))


@router.get("/api/v1/loss-analyses/{analysis_id}/curve.svg", response_class=Response, responses=SVG_ANSWER)
def analysis_curve(analysis_id: int, db: Db, _: Reader) -> Response:
    """The aggregate's loss exceedance curve, with the loss tolerance it was compared with."""
    with db.read() as session:
        row = analysis.get_analysis(session, analysis_id)
    figures = row.figures
    curve = [(p["loss"], p["probability"]) for p in figures["curve"]]
    points = [(p["loss"], p["probability"], p["breached"]) for p in figures["tolerance"]["points"]]
    title = f"Loss analysis {row.id}: {figures['risks']} risks"
    return Response(chart.exceedance_svg(curve, points, title=title, currency=row.currency), media_type=SVG)


@router.put("/api/v1/loss-tolerance")
def set_tolerance(data: ToleranceIn, db: Db, who: Admin) -> TolerancePublic:
    """The organisation's appetite in money: points {loss, probability}, "at most a 10 % chance of losing more
    than 1 M in a year"; a larger loss is allowed no larger a chance. The previous ones are kept."""
    with db.write() as session:
        return queries.tolerance(service.set_tolerance(session, data, who))


@router.get("/api/v1/loss-tolerance", responses={404: problem_answer("No loss tolerance is set yet.")})
def get_tolerance(db: Db, _: Reader) -> TolerancePublic:
    with db.read() as session:
        row = service.tolerance(session)
        if row is None:
            raise NotFound("No loss tolerance is set.")
        return queries.tolerance(row)


@router.get("/api/v1/loss-tolerance/history")
def tolerance_history(db: Db, _: Reader) -> list[TolerancePublic]:
    """Every tolerance set, the latest first."""
    with db.read() as session:
        return queries.tolerance_history(session)

"""The register's quantified loss in the console: the latest analysis (what the open register could cost in a year,
its curve against the loss tolerance, the risks driving a bad year, the risks not quantified) and what the treatment
actions with a loss effect are worth; a writer runs a new analysis of the open register."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlmodel import Session, col, select

from riskops.auth import Config, Db
from riskops.config import Settings
from riskops.console.pages import PREFIX, ConsoleRoute, Reading, Writing, render, see_other
from riskops.quant import analysis, chart
from riskops.quant.models import AnalysisFilter, LossAnalysis, LossEffect, LossEstimate, TreatmentValue
from riskops.risks.models import Risk, RiskStatus
from riskops.treatments.models import TreatmentAction

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
# The risks whose treatment values the page shows: each is a simulation before and after per action.
VALUED_RISKS = 10


@router.get("/loss", response_class=HTMLResponse)
def loss_page(request: Request, viewer: Reading, db: Db, config: Config) -> HTMLResponse:
    with db.read() as session:
        latest = session.exec(select(LossAnalysis).order_by(col(LossAnalysis.id).desc()).limit(1)).first()
        values = _values(session, config)
    curve = None
    if latest is not None:
        figures = latest.figures
        points = [(p["loss"], p["probability"], p["breached"]) for p in figures["tolerance"]["points"]]
        svg = chart.exceedance_svg(
            [(p["loss"], p["probability"]) for p in figures["curve"]], points,
            title=f"Loss analysis {latest.id}: {figures['risks']} risks", currency=latest.currency,
        )  # fmt: skip
        curve = Markup(svg)  # built from numbers and escaped text only (riskops.quant.chart)
    return render(request, "loss.html", viewer, analysis=latest, curve=curve, values=values)


@router.post("/loss", response_class=HTMLResponse)
def run_analysis(request: Request, viewer: Writing, db: Db, config: Config) -> Response:
    """A new analysis of the open register, as POST /api/v1/loss-analyses with no filter."""
    with db.write() as session:
        analysis.analyse(session, AnalysisFilter(), viewer.principal, config, None, None)
    return see_other(f"{PREFIX}/loss")


def _values(session: Session, settings: Settings) -> list[tuple[str, str, TreatmentValue]]:
    """The open risks with an estimate and an action with a loss effect, the most recently estimated first."""
    rows = session.exec(
        select(Risk.id, Risk.title)
        .join(LossEstimate, col(LossEstimate.risk_id) == col(Risk.id))
        .where(
            Risk.status == RiskStatus.open,
            col(Risk.id).in_(
                select(TreatmentAction.risk_id).join(LossEffect, col(LossEffect.action_id) == col(TreatmentAction.id))
            ),
        )
        .order_by(col(LossEstimate.updated_at).desc(), col(Risk.id))
        .limit(VALUED_RISKS)
    ).all()
    out: list[tuple[str, str, Any]] = []
    for risk_id, title in rows:
        risk = session.get(Risk, risk_id)
        if risk is not None:
            out.append((risk.reference, title, analysis.treatment_value(session, risk, settings, None, None)))
    return out

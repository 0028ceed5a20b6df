"""Adopting a matrix: every open risk moved onto the current version, each an explicit, recorded reassessment."""

from sqlmodel import Session, col, select

from riskops.apikeys.service import Principal
from riskops.config import Settings
from riskops.errors import Conflict, field_error
from riskops.risks import service
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import RescoreResult, RiskMatrix
from riskops.risks.models import AssessmentCreate, AssessmentKind, Risk, RiskStatus, Treatment


def rescore_all(
    session: Session, matrix: RiskMatrix, rationale: str, who: Principal, settings: Settings
) -> RescoreResult:
    """Move every open risk scored on an older matrix onto `matrix`: an explicit, recorded reassessment each.

    All or nothing: if any risk's likelihood or impact does not exist on the new scales, nothing moves
    and the answer lists those risks, to be reassessed one by one with new values. Only an admin adopts a
    matrix, so acceptances stand (govern_acceptance); the answer lists those now above the appetite.
    """
    latest = matrices.current(session)
    if matrix.version != latest.version:
        raise Conflict(f"Only the current matrix (version {latest.version}) can be adopted.")
    spec = matrix.parsed()
    risks = list(
        session.exec(
            select(Risk)
            .where(Risk.status == RiskStatus.open, Risk.matrix_version != matrix.version)
            .order_by(col(Risk.id))
            .with_for_update()
        )
    )
    misfits = [
        field_error(("risks", r.reference), "likelihood or impact is outside the new scales; reassess it by hand")
        for r in risks
        if max(r.inherent_likelihood, r.residual_likelihood or 1) > len(spec.likelihood)
        or max(r.inherent_impact, r.residual_impact or 1) > len(spec.impact)
    ]
    if misfits:
        raise Conflict(f"{len(misfits)} risk(s) do not fit the new matrix; nothing was rescored.", errors=misfits)
    changes, accepted_above = [], []
    for risk in risks:
        old_level = risk.level
        service.assess_risk(
            session,
            risk,
            AssessmentCreate(rationale=rationale),
            who,
            settings,
            kind=AssessmentKind.rescore,
            matrix=matrix,
        )
        if risk.level != old_level:
            changes.append({"risk": risk.reference, "old_level": old_level, "new_level": risk.level})
        if risk.treatment == Treatment.accept and spec.above_appetite(risk.level):
            accepted_above.append(risk.reference)
    return RescoreResult(
        matrix_version=matrix.version, rescored=len(risks), level_changes=changes,
        accepted_above_appetite=accepted_above,
    )  # fmt: skip

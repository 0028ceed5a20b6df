from fastapi import APIRouter, status

from riskops.auth import Admin, Reader, ReadSession, WriteSession
from riskops.matrices import service
from riskops.matrices.models import MatrixSpec, RescoreRequest, RescoreResult, RiskMatrix, RiskMatrixPublic
from riskops.risks import service as risks

router = APIRouter(prefix="/api/v1/matrices", tags=["matrices"])


def _public(matrix: RiskMatrix) -> RiskMatrixPublic:
    return RiskMatrixPublic(
        version=matrix.version, published_at=matrix.published_at, published_by=matrix.published_by, spec=matrix.parsed()
    )


@router.get("")
def list_matrices(session: ReadSession, _: Reader) -> list[RiskMatrixPublic]:
    return [_public(m) for m in service.list_versions(session)]


@router.get("/current")
def current_matrix(session: ReadSession, _: Reader) -> RiskMatrixPublic:
    return _public(service.current(session))


@router.get("/{version}")
def get_matrix(version: int, session: ReadSession, _: Reader) -> RiskMatrixPublic:
    return _public(service.get(session, version))


@router.post("", status_code=status.HTTP_201_CREATED)
def publish_matrix(spec: MatrixSpec, session: WriteSession, who: Admin) -> RiskMatrixPublic:
    """Publish a new version. Existing risks keep their scores until reassessed or rescored."""
    matrix = service.publish(session, spec, actor=who.name)
    session.commit()
    return _public(matrix)


@router.post("/{version}/rescore")
def rescore(version: int, data: RescoreRequest, session: WriteSession, who: Admin) -> RescoreResult:
    """Move every open risk onto this (the current) version, recording a reassessment for each."""
    result = risks.rescore_all(session, service.get(session, version), data.rationale, who)
    session.commit()
    return result

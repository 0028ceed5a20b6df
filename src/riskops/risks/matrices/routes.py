from fastapi import APIRouter, status

from riskops.auth import Admin, Config, Db, Reader
from riskops.risks.matrices import adoption, service
from riskops.risks.matrices.models import MatrixSpec, RescoreRequest, RescoreResult, RiskMatrix, RiskMatrixPublic

router = APIRouter(prefix="/api/v1/matrices", tags=["matrices"])


def _public(matrix: RiskMatrix) -> RiskMatrixPublic:
    return RiskMatrixPublic(
        version=matrix.version, published_at=matrix.published_at, published_by=matrix.published_by, spec=matrix.parsed()
    )


@router.get("")
def list_matrices(db: Db, _: Reader) -> list[RiskMatrixPublic]:
    with db.read() as session:
        return [_public(m) for m in service.list_versions(session)]


@router.get("/current")
def current_matrix(db: Db, _: Reader) -> RiskMatrixPublic:
    with db.read() as session:
        return _public(service.current(session))


@router.get("/{version}")
def get_matrix(version: int, db: Db, _: Reader) -> RiskMatrixPublic:
    with db.read() as session:
        return _public(service.get(session, version))


@router.post("", status_code=status.HTTP_201_CREATED)
def publish_matrix(spec: MatrixSpec, db: Db, who: Admin) -> RiskMatrixPublic:
    """Publish a new version. Existing risks keep their scores until reassessed or rescored."""
    with db.write() as session:
        return _public(service.publish(session, spec, actor=who.name))


@router.post("/{version}/rescore")
def rescore(version: int, data: RescoreRequest, db: Db, who: Admin, config: Config) -> RescoreResult:
    """Move every open risk onto this (the current) version, recording a reassessment for each."""
    with db.write() as session:
        return adoption.rescore_all(session, service.get(session, version), data.rationale, who, config)

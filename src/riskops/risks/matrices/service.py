from pathlib import Path

import yaml
from sqlmodel import Session, col, func, select

from riskops import audit
from riskops.db import get_row
from riskops.errors import NotFound
from riskops.risks.matrices.models import MatrixSpec, RiskMatrix

DEFAULT_MATRIX = Path(__file__).with_name("default.yaml")
BUILTIN_MATRICES = {p.stem: p for p in Path(__file__).parent.glob("*.yaml")}


def load_spec_file(path: Path) -> MatrixSpec:
    """Read a matrix from YAML (or JSON, which YAML includes); raises ValueError / ValidationError."""
    return MatrixSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def publish(session: Session, spec: MatrixSpec, *, actor: str) -> RiskMatrix:
    """A new version; risks keep theirs until they are reassessed or explicitly rescored."""
    latest = session.exec(select(func.max(RiskMatrix.version))).one()
    matrix = RiskMatrix(version=(latest or 0) + 1, name=spec.name, spec=spec.model_dump(), published_by=actor)
    session.add(matrix)
    audit.service.record(
        session,
        entity_type="matrix",
        entity_id=matrix.version,
        action="published",
        actor=actor,
        changes={"name": {"old": None, "new": spec.name}},
    )
    session.flush()
    return matrix


def current(session: Session) -> RiskMatrix:
    matrix = session.exec(select(RiskMatrix).order_by(col(RiskMatrix.version).desc()).limit(1)).first()
    if matrix is None:
        raise NotFound("No risk matrix is published; run 'riskops migrate' to install the default.")
    return matrix


def get(session: Session, version: int) -> RiskMatrix:
    return get_row(session, RiskMatrix, version, "Risk matrix version")


def list_versions(session: Session) -> list[RiskMatrix]:
    return list(session.exec(select(RiskMatrix).order_by(col(RiskMatrix.version).desc())))


def level_names(session: Session) -> list[str]:
    """Every level any published version defines, each once: risks keep the version they were scored on."""
    names: dict[str, None] = {}
    for matrix in reversed(list_versions(session)):
        names.update(dict.fromkeys(level.name for level in matrix.parsed().levels))
    return list(names)


def ensure_default(session: Session) -> None:
    if session.exec(select(RiskMatrix.version).limit(1)).first() is None:
        publish(session, load_spec_file(DEFAULT_MATRIX), actor="system")

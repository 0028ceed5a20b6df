from typing import Annotated

from fastapi import APIRouter, Path

from riskops.auth import Admin, Db, Reader
from riskops.incidents.escalations import service
from riskops.incidents.escalations.models import POLICY_NAME, PolicySpec

router = APIRouter(prefix="/api/v1/escalation-policies", tags=["escalations"])


@router.get("")
def list_policies(db: Db, _: Reader) -> list[PolicySpec]:
    with db.read() as session:
        return [p.parsed() for p in service.list_policies(session)]


@router.get("/{name}")
def get_policy(name: str, db: Db, _: Reader) -> PolicySpec:
    with db.read() as session:
        return service.get(session, name).parsed()


# The path names the policy: it must be a name a policy may have (422 naming path.name otherwise).
PolicyName = Annotated[str, Path(min_length=1, max_length=64, pattern=POLICY_NAME)]


@router.put("/{name}")
def save_policy(name: PolicyName, spec: PolicySpec, db: Db, who: Admin) -> PolicySpec:
    """Create or replace. A policy named 'default' applies to incidents whose playbook names none."""
    spec = spec.model_copy(update={"name": name})
    with db.write() as session:
        return service.save(session, spec, who).parsed()

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from riskops.auth import Admin, Db, Reader
from riskops.playbooks import service
from riskops.playbooks.models import PlaybookListed, PlaybookVersionPublic
from riskops.playbooks.spec import PlaybookSpec
from riskops.risks import service as risks

router = APIRouter(prefix="/api/v1/playbooks", tags=["playbooks"])


@router.get("")
def list_playbooks(
    db: Db,
    _: Reader,
    risk: Annotated[str | None, Query(description="A risk id or reference: the playbooks that fit it first.")] = None,
) -> list[PlaybookListed]:
    with db.read() as session:
        answering = risks.get_risk(session, risks.parse_risk_ref(risk)) if risk and risk.strip() else None
        return service.list_playbooks(session, risk=answering)


@router.get("/schema")
def playbook_schema(_: Reader) -> dict[str, Any]:
    """The JSON Schema every playbook file and published playbook must satisfy."""
    return PlaybookSpec.model_json_schema()


@router.post("", status_code=status.HTTP_201_CREATED)
def publish_playbook(spec: PlaybookSpec, db: Db, who: Admin, response: Response) -> PlaybookVersionPublic:
    """Publish a version. The same content again answers 200; changed content needs a higher version."""
    with db.write() as session:
        row, created = service.publish(session, spec, source="api", actor=who.name)
        if not created:
            response.status_code = status.HTTP_200_OK
        return service.present(row)


@router.get("/{slug}")
def get_playbook(slug: str, db: Db, _: Reader) -> PlaybookVersionPublic:
    """The latest version in service."""
    with db.read() as session:
        return service.present(service.get_version(session, slug))


@router.get("/{slug}/versions")
def list_versions(slug: str, db: Db, _: Reader) -> list[PlaybookVersionPublic]:
    with db.read() as session:
        return [service.present(v) for v in service.list_versions(session, slug)]


@router.get("/{slug}/versions/{version}")
def get_version(slug: str, version: int, db: Db, _: Reader) -> PlaybookVersionPublic:
    with db.read() as session:
        return service.present(service.get_version(session, slug, version))


@router.post("/{slug}/versions/{version}/retire")
def retire_version(slug: str, version: int, db: Db, who: Admin) -> PlaybookVersionPublic:
    """No new activations of this version; incidents already running it keep it."""
    with db.write() as session:
        return service.present(service.retire(session, slug, version, actor=who.name))

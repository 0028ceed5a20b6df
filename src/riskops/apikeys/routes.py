from fastapi import APIRouter, Request, status

from riskops.apikeys import service
from riskops.apikeys.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from riskops.auth import Admin, Db

router = APIRouter(prefix="/api/v1/apikeys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(data: ApiKeyCreate, db: Db, who: Admin) -> ApiKeyCreated:
    """The secret is in this answer only; the service keeps its hash."""
    with db.write() as session:
        key, secret = service.create_key(session, data, created_by=who.name)
        return ApiKeyCreated.model_validate({**key.model_dump(), "secret": secret})


@router.get("")
def list_keys(db: Db, _: Admin) -> list[ApiKeyPublic]:
    with db.read() as session:
        return [ApiKeyPublic.model_validate(k, from_attributes=True) for k in service.list_keys(session)]


@router.delete("/{key_id}")
def revoke_key(key_id: int, db: Db, who: Admin, request: Request) -> ApiKeyPublic:
    """Revoked at once on this instance; other instances stop trusting it within RISKOPS_AUTH_CACHE_SECONDS."""
    with db.write() as session:
        key = service.revoke_key(session, key_id, revoked_by=who.name)
    request.app.state.principals.forget(key_id)
    return ApiKeyPublic.model_validate(key, from_attributes=True)

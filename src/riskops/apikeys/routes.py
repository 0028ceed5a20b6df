from fastapi import APIRouter, status

from riskops.apikeys import service
from riskops.apikeys.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from riskops.auth import Admin, ReadSession, WriteSession

router = APIRouter(prefix="/api/v1/apikeys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(data: ApiKeyCreate, session: WriteSession, who: Admin) -> ApiKeyCreated:
    """The secret is in this answer only; the service keeps its hash."""
    key, secret = service.create_key(session, data, created_by=who.name)
    session.commit()
    return ApiKeyCreated.model_validate({**key.model_dump(), "secret": secret})


@router.get("")
def list_keys(session: ReadSession, _: Admin) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.model_validate(k, from_attributes=True) for k in service.list_keys(session)]


@router.delete("/{key_id}")
def revoke_key(key_id: int, session: WriteSession, who: Admin) -> ApiKeyPublic:
    key = service.revoke_key(session, key_id, revoked_by=who.name)
    session.commit()
    return ApiKeyPublic.model_validate(key, from_attributes=True)

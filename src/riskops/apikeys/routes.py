"""Service keys (admins) and a signed-in user's own keys."""

from typing import Any

from fastapi import APIRouter, Request, status

from riskops.apikeys import service
from riskops.apikeys.models import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from riskops.apikeys.service import Principal
from riskops.auth import Admin, Db, Reader
from riskops.errors import Forbidden, problem_answer

admin = APIRouter(prefix="/api/v1/apikeys", tags=["api keys"])
own = APIRouter(prefix="/api/v1/me/api-keys", tags=["api keys"])


def _created(key: ApiKey, owner: str | None, secret: str) -> ApiKeyCreated:
    return ApiKeyCreated.model_validate({**service.present(key, owner).model_dump(), "secret": secret})


@admin.post("", status_code=status.HTTP_201_CREATED)
def create_key(data: ApiKeyCreate, db: Db, who: Admin) -> ApiKeyCreated:
    """A service key, of no user. The secret is in this answer only; the service keeps its hash."""
    with db.write() as session:
        key, secret = service.create_key(session, data, created_by=who.name)
        return _created(key, None, secret)


@admin.get("")
def list_keys(db: Db, _: Admin) -> list[ApiKeyPublic]:
    """Every key, revoked ones too, each with its owner (a user's own key) or none (a service key)."""
    with db.read() as session:
        return service.public_keys(session)


@admin.delete("/{key_id}")
def revoke_key(key_id: int, db: Db, who: Admin, request: Request) -> ApiKeyPublic:
    """Revoked at once on this instance; other instances stop trusting it within RISKOPS_AUTH_CACHE_SECONDS
    (a user's own key: at once everywhere)."""
    with db.write() as session:
        answer = service.public_key(session, service.revoke_key(session, key_id, revoked_by=who.name))
    request.app.state.principals.forget(key_id)
    return answer


# ---- a user's own keys ----

_OWN: dict[int | str, dict[str, Any]] = {
    401: problem_answer("Not signed in: these routes answer a console session (cookie and CSRF token) only."),
    403: problem_answer("Called with an API key rather than a session, or a role above the user's own was asked."),
}


def _user(who: Principal) -> int:
    """The signed-in user: a key (even their own) may not make or revoke keys, so one that leaks cannot breed."""
    if who.user_id is None:
        raise Forbidden("Your own API keys are managed while signed in to the console, not with an API key.")
    return who.user_id


@own.get("", responses=_OWN)
def list_own_keys(db: Db, who: Reader) -> list[ApiKeyPublic]:
    """The signed-in user's own keys, revoked ones too; never a secret."""
    with db.read() as session:
        return service.public_keys(session, user_id=_user(who))


@own.post("", status_code=status.HTTP_201_CREATED, responses=_OWN)
def create_own_key(data: ApiKeyCreate, db: Db, who: Reader) -> ApiKeyCreated:
    """A key of the signed-in user's own, with a role at most theirs. It works only while the user is active and
    their role reaches the key's, and the history names them: `ann@example.org (key ci-bot)`. The secret is in
    this answer only."""
    with db.write() as session:
        key, secret = service.create_own_key(session, _user(who), data)
        return _created(key, who.name, secret)


@own.delete("/{key_id}", responses={**_OWN, 404: problem_answer("No such key of this user's (another's too).")})
def revoke_own_key(key_id: int, db: Db, who: Reader, request: Request) -> ApiKeyPublic:
    """Revoke one of the signed-in user's own keys: it stops working at once."""
    with db.write() as session:
        key = service.revoke_own_key(session, _user(who), key_id, revoked_by=who.name)
        answer = service.present(key, who.name)
    request.app.state.principals.forget(key_id)
    return answer


# The app includes this one router: the admin's keys and the user's own.
router = APIRouter()
router.include_router(admin)
router.include_router(own)

"""API keys and roles as FastAPI dependencies; the session dependencies live here too."""

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from riskops import db
from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal, authenticate
from riskops.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rko_...`")


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _read_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with db.read_session(engine) as session:
        yield session


def _write_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    # Routes commit once at the end; anything left uncommitted (an error) is rolled back here.
    with db.write_session(engine) as session:
        yield session


ReadSession = Annotated[Session, Depends(_read_session)]
WriteSession = Annotated[Session, Depends(_write_session)]


def require(role: Role) -> Callable[..., Principal]:
    def dependency(
        engine: Annotated[Engine, Depends(get_engine)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise Unauthorized("An API key is required: send 'Authorization: Bearer <key>'.")
        with engine.connect() as conn:
            principal = authenticate(conn, credentials.credentials)
        if principal is None:
            raise Unauthorized("The API key is unknown or revoked.")
        if not principal.may(role):
            raise Forbidden(f"This needs a key with the '{role}' role; this key has '{principal.role}'.")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require(Role.read))]
Writer = Annotated[Principal, Depends(require(Role.write))]
Admin = Annotated[Principal, Depends(require(Role.admin))]

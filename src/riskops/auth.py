"""Who is calling (an API key, or a signed-in user's session cookie) and their role as FastAPI dependencies, and the
database handle and settings routes use."""

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from riskops.apikeys.models import Role
from riskops.apikeys.service import Principal, authenticate, hash_secret, record_use
from riskops.config import Settings
from riskops.db import Database
from riskops.errors import Forbidden, Unauthorized
from riskops.users import service as users

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rko_...`")
session_cookie = APIKeyCookie(
    name=users.SESSION_COOKIE, auto_error=False,
    description="A console session (`POST /console/sign-in`). A request that changes anything must also carry the "
    f"session's CSRF token: the `{users.CSRF_HEADER}` header or the `{users.CSRF_FIELD}` form field.",
)  # fmt: skip
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Calendar feed tokens (reviews.calendar.TOKEN_PREFIX) are not API keys: named here to say so when one is sent.
FEED_TOKEN_PREFIX = "rkf_"


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


Db = Annotated[Database, Depends(get_database)]


def settings_of(request: Request) -> Settings:
    """The application's settings: the one place routes read them from."""
    settings: Settings = request.app.state.settings
    return settings


async def _app_settings(request: Request) -> Settings:
    return settings_of(request)  # async: a dependency without I/O should cost no worker-thread hop


# The application's settings, for routes to pass to the service functions that need them.
Config = Annotated[Settings, Depends(_app_settings)]


class PrincipalCache:
    """Recently verified keys, so that most requests skip a database round trip.

    An entry lives `ttl` seconds: a key revoked through another instance stops working within that time;
    one revoked through this instance stops at once. A ttl of 0 turns the cache off. A user's own key is never
    kept: it is checked against its user on every request, as a session is, so that disabling the user (or
    lowering their role below the key's) stops it at once, on every instance, whoever made the change.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self.ttl, principal)

    def forget(self, key_id: int) -> None:
        self._entries = {h: e for h, e in self._entries.items() if e[1].key_id != key_id}


async def _principal(request: Request, database: Database, secret: str | None, role: Role) -> Principal:
    if not secret:
        raise Unauthorized("An API key is required: send 'Authorization: Bearer <key>'.")
    if secret.startswith(FEED_TOKEN_PREFIX):
        raise Unauthorized("A feed token opens the calendar feed only; this needs an API key.")
    cache: PrincipalCache = request.app.state.principals
    key_hash = hash_secret(secret)
    principal = cache.get(key_hash)
    if principal is None:
        principal = await run_in_threadpool(_lookup, database, key_hash)
        if principal is None:
            raise Unauthorized("The API key is unknown or revoked.")
        if principal.owner_id is None:
            cache.put(key_hash, principal)
    if not principal.may(role):
        raise Forbidden(f"This needs a key with the '{role}' role; this key has '{principal.role}'.")
    return principal


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def dependency(
        request: Request,
        database: Db,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        cookie: Annotated[str | None, Depends(session_cookie)],
    ) -> Principal:
        if credentials is None and cookie:  # an API key wins: a bearer request is never cookie-authenticated
            return (await signed_in(request, database, cookie, role)).principal
        return await _principal(request, database, credentials.credentials if credentials else None, role)

    return dependency


async def signed_in(request: Request, database: Database, cookie: str, role: Role) -> users.SessionPrincipal:
    """The session's user, after the CSRF check on anything that may change state."""
    found = await run_in_threadpool(session_lookup, database, cookie, settings_of(request))
    if found is None:
        raise Unauthorized("The session has ended or is unknown: sign in again.")
    if request.method not in SAFE_METHODS and not users.csrf_matches(found.csrf_token, await _csrf_given(request)):
        raise Forbidden(
            f"A change made with a session cookie needs the session's CSRF token ({users.CSRF_HEADER} header or "
            f"{users.CSRF_FIELD} form field)."
        )
    if not found.principal.may(role):
        raise Forbidden(f"This needs the '{role}' role; this user has '{found.principal.role}'.")
    return found


async def _csrf_given(request: Request) -> str | None:
    header = request.headers.get(users.CSRF_HEADER)
    if header is not None:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(users.CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def session_lookup(database: Database, token: str, settings: Settings) -> users.SessionPrincipal | None:
    """The live session behind a cookie (its last-seen time written now and then), or None."""
    with database.read() as session:
        found = users.session_principal(session, token, settings)
    if found is not None and found.stale:
        with database.write() as session:
            users.touch_session(session, found.session_id)
    return found


def _lookup(database: Database, key_hash: str) -> Principal | None:
    with database.engine.connect() as conn:
        found = authenticate(conn, key_hash)
    if found is None:
        return None
    if found.use_is_due:
        with database.write() as session:
            record_use(session, found.principal.key_id)
    return found.principal


Reader = Annotated[Principal, Depends(require(Role.read))]
Writer = Annotated[Principal, Depends(require(Role.write))]
Admin = Annotated[Principal, Depends(require(Role.admin))]

"""The users API (admins) and the console's sign-in, sign-out and set-password forms."""

import asyncio
import html
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from riskops.auth import Admin, Config, Db, Reader
from riskops.config import Settings
from riskops.db import Database
from riskops.errors import Unauthorized, problem_answer
from riskops.users import service
from riskops.users.models import EMAIL_MAX, PASSWORD_MAX, PasswordLink, User, UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])
console = APIRouter(prefix="/console", tags=["console"])
_SEE_OTHER: dict[int | str, dict[str, Any]] = {303: {"description": "Done: on to the next page (`Location`)."}}
_SIGNED_OUT = problem_answer("No session cookie, or its session has ended (signed out, expired, user disabled).")
_NO_CSRF = problem_answer("A change made with the session cookie lacked the session's CSRF token, or it was wrong.")


def _public(user: User) -> UserPublic:
    fields = {name: getattr(user, name) for name in UserPublic.model_fields if name != "has_password"}
    return UserPublic.model_validate({**fields, "has_password": user.password_hash is not None})


@router.get("")
def list_users(db: Db, _: Admin) -> list[UserPublic]:
    with db.read() as session:
        return [_public(u) for u in service.list_users(session)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(data: UserCreate, db: Db, who: Admin) -> UserPublic:
    """A user without a password: issue them a set-password link (`POST /api/v1/users/{id}/password-link`)."""
    with db.write() as session:
        return _public(service.create_user(session, data, actor=who.name))


@router.patch("/{user_id}")
def update_user(user_id: int, data: UserUpdate, db: Db, who: Admin) -> UserPublic:
    """Disabling a user (`active: false`) ends their sessions at once."""
    with db.write() as session:
        return _public(service.update_user(session, user_id, data, actor=who.name))


@router.post("/{user_id}/password-link", status_code=status.HTTP_201_CREATED)
def issue_password_link(user_id: int, db: Db, who: Admin, settings: Config) -> PasswordLink:
    """A one-time link to set the user's password (first one, or a reset). The token is in this answer only."""
    with db.write() as session:
        token, expires_at = service.issue_password_link(session, user_id, settings, actor=who.name)
    return PasswordLink(token=token, url=service.password_link_url(settings, token), expires_at=expires_at)


# ---- the console's forms ----


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - riskops</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main><h1>{title}</h1>'
        f"{body}</main></body></html>"
    )


@console.get("/sign-in", response_class=HTMLResponse)
def sign_in_form() -> HTMLResponse:
    """The sign-in form."""
    return _page(
        "Sign in",
        '<form method="post" action="/console/sign-in">'
        '<p><label for="email">E-mail</label> <input id="email" name="email" type="email" required '
        'autocomplete="username"></p><p><label for="password">Password</label> <input id="password" name="password" '
        'type="password" required autocomplete="current-password"></p><p><button>Sign in</button></p></form>',
    )


def _secure(request: Request, settings: Settings) -> bool:
    return settings.public_url.startswith("https://") or request.url.scheme == "https"


def _sign_in(database: Database, email: str, password: str, settings: Settings) -> service.SignedIn | None:
    with database.write() as session:  # committed on failure too: the failure counts toward the lockout
        return service.sign_in(session, email, password, settings)


@console.post(
    "/sign-in", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
    responses={**_SEE_OTHER, 401: problem_answer("Refused: the same answer whatever the reason (see the README).")},
)  # fmt: skip
async def sign_in(
    request: Request, db: Db, settings: Config,
    email: Annotated[str, Form(min_length=1, max_length=EMAIL_MAX)],
    password: Annotated[str, Form(min_length=1, max_length=PASSWORD_MAX)],
) -> Response:  # fmt: skip
    """Sign in: a session cookie (HttpOnly, SameSite=Lax; Secure over HTTPS) and a redirect to the console. A wrong
    password, an unknown e-mail and a locked account get the same 401 after the same delay."""
    signed_in = await run_in_threadpool(_sign_in, db, email, password, settings)
    if signed_in is None:
        await asyncio.sleep(settings.sign_in_failure_delay_seconds)
        raise Unauthorized(service.SIGN_IN_REFUSED)
    answer = RedirectResponse("/console/session", status_code=status.HTTP_303_SEE_OTHER)
    answer.set_cookie(
        service.SESSION_COOKIE, signed_in.token, max_age=settings.session_absolute_hours * 3600, path="/",
        httponly=True, samesite="lax", secure=_secure(request, settings),
    )  # fmt: skip
    return answer


@console.get("/session", responses={401: _SIGNED_OUT, 403: problem_answer("The key's role does not allow this.")})
def current_session(request: Request, db: Db, settings: Config, who: Reader) -> dict[str, str | int | None]:
    """Who is signed in, and the session's CSRF token for the requests that change anything."""
    token = request.cookies.get(service.SESSION_COOKIE)
    found = None
    if token:
        with db.read() as session:
            found = service.session_principal(session, token, settings)
    if found is None:
        raise Unauthorized("This answers a console session only (a session cookie, not an API key).")
    return {"email": who.name, "role": str(who.role), "user_id": who.user_id, "csrf_token": found.csrf_token}


@console.post(
    "/sign-out", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
    responses={**_SEE_OTHER, 401: _SIGNED_OUT, 403: _NO_CSRF},
)  # fmt: skip
def sign_out(request: Request, db: Db, _: Reader) -> Response:
    """End this session (its row is deleted: the cookie opens nothing any more)."""
    token = request.cookies.get(service.SESSION_COOKIE)
    if token:
        with db.write() as session:
            service.end_session(session, token)
    answer = RedirectResponse("/console/sign-in", status_code=status.HTTP_303_SEE_OTHER)
    answer.delete_cookie(service.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return answer


@console.get("/set-password", response_class=HTMLResponse)
def set_password_form(token: Annotated[str, Query(max_length=100)] = "") -> HTMLResponse:
    """The form a set-password link opens."""
    return _page(
        "Set your password",
        '<form method="post" action="/console/set-password">'
        f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
        '<p><label for="password">New password</label> <input id="password" name="password" type="password" '
        'required autocomplete="new-password"></p><p><button>Set password</button></p></form>',
    )


@console.post(
    "/set-password", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
    responses={**_SEE_OTHER, 401: problem_answer("The link's token is unknown, used or expired.")},
)  # fmt: skip
def set_password(
    db: Db,
    token: Annotated[str, Form(min_length=1, max_length=100)],
    password: Annotated[str, Form(min_length=1, max_length=PASSWORD_MAX)],
) -> Response:
    """Set the password with a one-time link's token; every session of the user ends. On to the sign-in form."""
    with db.write() as session:
        service.use_password_link(session, token, password)
    return RedirectResponse("/console/sign-in", status_code=status.HTTP_303_SEE_OTHER)

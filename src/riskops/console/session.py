"""Signing in and out, the session's CSRF token, setting a password from a one-time link, and the first start."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from riskops.auth import Config, Db, Reader
from riskops.config import Settings
from riskops.console.pages import PREFIX, SIGN_IN, ConsoleRoute, local_path, render, see_other, wants_html
from riskops.db import Database
from riskops.errors import DomainError, Unauthorized, problem_answer
from riskops.users import service
from riskops.users.models import EMAIL_MAX, PASSWORD_MAX

router = APIRouter(prefix=PREFIX, tags=["console"], route_class=ConsoleRoute)
_SEE_OTHER: dict[int | str, dict[str, Any]] = {303: {"description": "Done: on to the next page (`Location`)."}}
_SIGNED_OUT = problem_answer("No session cookie, or its session has ended (signed out, expired, user disabled).")
_NO_CSRF = problem_answer("A change made with the session cookie lacked the session's CSRF token, or it was wrong.")
_NEXT_MAX = 500


def _first_start(database: Database) -> bool:
    with database.read() as session:
        return not service.has_users(session)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(
    request: Request, db: Db, next: Annotated[str, Query(max_length=_NEXT_MAX)] = ""
) -> HTMLResponse:
    """The sign-in form; before any user exists, how to create the first one."""
    first = await run_in_threadpool(_first_start, db)
    return render(request, "sign_in.html", first_start=first, email="", next=local_path(next), problem=None)


def _secure(request: Request, settings: Settings) -> bool:
    return settings.public_url.startswith("https://") or request.url.scheme == "https"


def _sign_in(database: Database, email: str, password: str, settings: Settings) -> service.SignedIn | None:
    with database.write() as session:  # committed on failure too: the failure counts toward the lockout
        return service.sign_in(session, email, password, settings)


@router.post(
    "/sign-in", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
    responses={**_SEE_OTHER, 401: problem_answer("Refused: the same answer whatever the reason (see the README).")},
)  # fmt: skip
async def sign_in(
    request: Request, db: Db, settings: Config,
    email: Annotated[str, Form(min_length=1, max_length=EMAIL_MAX)],
    password: Annotated[str, Form(min_length=1, max_length=PASSWORD_MAX)],
    next: Annotated[str, Form(max_length=_NEXT_MAX)] = "",
) -> Response:  # fmt: skip
    """Sign in: a session cookie (HttpOnly, SameSite=Lax; Secure over HTTPS) and a redirect to `next` (a console
    page) or the dashboard. A wrong password, an unknown e-mail and a locked account get the same 401 after the
    same delay (a browser gets the form again, with the e-mail it typed)."""
    signed_in = await run_in_threadpool(_sign_in, db, email, password, settings)
    if signed_in is None:
        await asyncio.sleep(settings.sign_in_failure_delay_seconds)
        if not wants_html(request):
            raise Unauthorized(service.SIGN_IN_REFUSED)
        return render(
            request, "sign_in.html", status=401, first_start=False, email=email, next=local_path(next),
            problem=service.SIGN_IN_REFUSED,
        )  # fmt: skip
    answer = see_other(local_path(next))
    answer.set_cookie(
        service.SESSION_COOKIE, signed_in.token, max_age=settings.session_absolute_hours * 3600, path="/",
        httponly=True, samesite="lax", secure=_secure(request, settings),
    )  # fmt: skip
    return answer


@router.get("/session", responses={401: _SIGNED_OUT, 403: problem_answer("The key's role does not allow this.")})
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


@router.post(
    "/sign-out", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
    responses={**_SEE_OTHER, 401: _SIGNED_OUT, 403: _NO_CSRF},
)  # fmt: skip
def sign_out(request: Request, db: Db, _: Reader) -> Response:
    """End this session (its row is deleted: the cookie opens nothing any more)."""
    token = request.cookies.get(service.SESSION_COOKIE)
    if token:
        with db.write() as session:
            service.end_session(session, token)
    answer = see_other(SIGN_IN)
    answer.delete_cookie(service.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return answer


@router.get("/set-password", response_class=HTMLResponse)
def set_password_form(request: Request, token: Annotated[str, Query(max_length=100)] = "") -> HTMLResponse:
    """The form a set-password link opens."""
    return render(request, "set_password.html", token=token, problem=None)


@router.post(
    "/set-password", status_code=status.HTTP_303_SEE_OTHER, response_class=Response,
    responses={**_SEE_OTHER, 401: problem_answer("The link's token is unknown, used or expired.")},
)  # fmt: skip
def set_password(
    request: Request,
    db: Db,
    token: Annotated[str, Form(min_length=1, max_length=100)],
    password: Annotated[str, Form(min_length=1, max_length=PASSWORD_MAX)],
) -> Response:
    """Set the password with a one-time link's token; every session of the user ends. On to the sign-in form."""
    try:
        with db.write() as session:
            service.use_password_link(session, token, password)
    except DomainError as exc:
        if not wants_html(request):
            raise
        return render(request, "set_password.html", status=exc.status, token=token, problem=exc.detail)
    return see_other(SIGN_IN)

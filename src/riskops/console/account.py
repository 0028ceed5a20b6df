"""The signed-in user's own account: display name, language and time zone (never their role or whether they are
active), and their own API keys."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.auth import Db
from riskops.console.admin import LANGUAGES, Form, shown_once, zones
from riskops.console.pages import (
    PREFIX,
    ConsoleRoute,
    FormProblem,
    Reading,
    Viewer,
    fields_of,
    problem_of,
    render,
    see_other,
)
from riskops.errors import DomainError
from riskops.users import service as users
from riskops.users.models import UserUpdate

ACCOUNT = f"{PREFIX}/account"
router = APIRouter(prefix=ACCOUNT, include_in_schema=False, route_class=ConsoleRoute)
# What a user may change of their own: the rest (role, active) is an admin's.
OWN_FIELDS = ("display_name", "language", "time_zone")


def _user_id(viewer: Viewer) -> int:
    assert viewer.principal.user_id is not None  # a console page's viewer is always a signed-in user
    return viewer.principal.user_id


def _page(
    request: Request, db: Db, viewer: Viewer, *, problem: FormProblem | None = None,
    typed: dict[str, Any] | None = None, key_problem: FormProblem | None = None,
    key_typed: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    with db.read() as session:
        user = users.get_user(session, _user_id(viewer))
        keys = apikeys.public_keys(session, user_id=user.id)
    failed = problem or key_problem
    return render(
        request, "account.html", viewer, status=failed.status if failed else 200, user=user, keys=keys,
        typed=typed or {name: getattr(user, name) for name in OWN_FIELDS}, problem=problem,
        key_problem=key_problem, key_typed=key_typed or {}, languages=LANGUAGES, zones=zones(),
        roles=[(role.value, role.value) for role in Role if viewer.may(role)],
        saved=request.query_params.get("saved") == "1",
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def account_page(request: Request, viewer: Reading, db: Db) -> HTMLResponse:
    return _page(request, db, viewer)


@router.post("", response_class=HTMLResponse)
def save_account(request: Request, viewer: Reading, db: Db, form: Form) -> Response:
    """As PATCH /api/v1/users/{id} with the user's own fields only; a blank display name is refused, not kept."""
    typed = {name: str(form.get(name, "")).strip() for name in OWN_FIELDS if name in form}
    try:
        data = UserUpdate.model_validate(typed)
        with db.write() as session:
            users.update_user(session, _user_id(viewer), data, actor=viewer.email)
    except (ValidationError, DomainError) as exc:
        return _page(request, db, viewer, problem=problem_of(exc), typed=typed)
    return see_other(f"{ACCOUNT}?saved=1")  # the next page is in the language just chosen


@router.post("/api-keys", response_class=HTMLResponse)
def create_key(request: Request, viewer: Reading, db: Db, form: Form) -> Response:
    """As POST /api/v1/me/api-keys: a key of the user's own, its secret on this answer only."""
    typed = fields_of(form)
    try:
        data = ApiKeyCreate.model_validate(typed)
        with db.write() as session:
            key, secret = apikeys.create_own_key(session, _user_id(viewer), data)
    except (ValidationError, DomainError) as exc:
        return _page(request, db, viewer, key_problem=problem_of(exc), key_typed=typed)
    return shown_once(
        request, viewer, "own-api-key", ACCOUNT, subject=key.name, secrets=[("key", secret)], facts=[("role", key.role)]
    )


@router.post("/api-keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(request: Request, viewer: Reading, db: Db, key_id: int) -> Response:
    """As DELETE /api/v1/me/api-keys/{id}: another's key is answered as if it did not exist."""
    with db.write() as session:
        apikeys.revoke_own_key(session, _user_id(viewer), key_id, revoked_by=viewer.email)
    request.app.state.principals.forget(key_id)
    return see_other(ACCOUNT)

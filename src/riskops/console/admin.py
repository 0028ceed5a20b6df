"""The admin pages: the landing page, users, API keys, the risk matrix and calendar feed tokens (alerting's pages are
in admin_alerting), over the same service calls as their API routes, and what every admin page shares. A secret
(key, signing secret, token, set-password link) is shown on the answer to the form that made it, and nowhere else."""

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any
from zoneinfo import available_timezones

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.auth import Db, settings_of
from riskops.console.pages import (
    PREFIX,
    Administering,
    ConsoleRoute,
    FormProblem,
    Viewer,
    fields_of,
    form_of,
    problem_of,
    render,
    see_other,
)
from riskops.errors import DomainError, Unprocessable, field_error
from riskops.reviews import calendar
from riskops.reviews.models import FeedTokenCreate
from riskops.risks.matrices import adoption
from riskops.risks.matrices import service as matrices
from riskops.risks.matrices.models import MatrixSpec, RescoreRequest
from riskops.users import service as users
from riskops.users.models import UserCreate, UserUpdate

ADMIN = f"{PREFIX}/admin"
router = APIRouter(prefix=ADMIN, include_in_schema=False, route_class=ConsoleRoute)
Form = Annotated[FormData, Depends(form_of)]
ROLES = [(role.value, role.value) for role in Role]
LANGUAGES = [("en", "English"), ("zh-CN", "简体中文")]


@cache
def zones() -> list[str]:
    """Every IANA time zone this system knows: the choices offered for a user's time zone (typing is checked)."""
    return sorted(available_timezones())


def absolute(request: Request, path: str) -> str:
    """A path of this service as a URL to paste elsewhere: under RISKOPS_PUBLIC_URL, or where this request came."""
    if path.startswith(("http://", "https://")):
        return path
    base = settings_of(request).public_url or str(request.base_url)
    return base.rstrip("/") + path


def document(text: str) -> Any:
    """A YAML (or JSON, which YAML reads) textarea's content, or the API's 422 for a body it cannot read. Aliases
    are refused: a few lines of them expand into billions of nodes for the model to walk ("billion laughs")."""
    try:
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise Unprocessable(
                "The request body could not be read: YAML aliases (*name) are not accepted; write the value out.",
                errors=[field_error(("body",), "YAML aliases are not accepted")],
            )
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise Unprocessable(
            f"The request body could not be read: {exc}.", errors=[field_error(("body",), "not readable YAML or JSON")]
        ) from exc


def as_yaml(model: BaseModel, **options: Any) -> str:
    return yaml.safe_dump(model.model_dump(mode="json", **options), sort_keys=False, allow_unicode=True)


def shown_once(request: Request, viewer: Viewer, heading: str, back: str, **context: Any) -> HTMLResponse:
    """The answer page of a form that made a secret: the one page that shows it (PAGE_HEADERS: never cached)."""
    context = {"secrets": [], "snippet": None, "facts": [], **context}
    return render(request, "admin/shown_once.html", viewer, status=201, heading=heading, back=back, **context)


Retry = Callable[[FormProblem], HTMLResponse]


def attempt(work: Callable[[], Response], again: Retry) -> Response:
    """Run a form's change; a refusal shows the form again with the problem in the API's words."""
    try:
        return work()
    except (ValidationError, DomainError) as exc:
        return again(problem_of(exc))


@router.get("", response_class=HTMLResponse)
def landing(request: Request, viewer: Administering) -> HTMLResponse:
    return render(request, "admin/index.html", viewer)


# ---- users ----


def _users_page(
    request: Request, db: Db, viewer: Viewer, problem: FormProblem | None = None, typed: dict[str, Any] | None = None
) -> HTMLResponse:
    with db.read() as session:
        people = users.list_users(session)
    return render(
        request, "admin/users.html", viewer, status=problem.status if problem else 200, people=people, roles=ROLES,
        languages=LANGUAGES, zones=zones(), problem=problem, typed=typed or {},
    )  # fmt: skip


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, viewer: Administering, db: Db) -> HTMLResponse:
    return _users_page(request, db, viewer)


@router.post("/users", response_class=HTMLResponse)
def create_user(request: Request, viewer: Administering, db: Db, form: Form) -> Response:
    typed = fields_of(form)

    def work() -> Response:
        data = UserCreate.model_validate(typed)
        with db.write() as session:
            users.create_user(session, data, actor=viewer.email)
        return see_other(f"{ADMIN}/users")

    return attempt(work, lambda problem: _users_page(request, db, viewer, problem, typed))


@router.post("/users/{user_id}", response_class=HTMLResponse)
def change_user(request: Request, viewer: Administering, db: Db, form: Form, user_id: int) -> Response:
    """A role changed, or the user disabled (their sessions end at once, their keys stop) or enabled."""

    def work() -> Response:
        data = UserUpdate.model_validate(fields_of(form))
        with db.write() as session:
            users.update_user(session, user_id, data, actor=viewer.email)
        return see_other(f"{ADMIN}/users")

    return attempt(work, lambda problem: _users_page(request, db, viewer, problem))


@router.post("/users/{user_id}/password-link", response_class=HTMLResponse)
def issue_password_link(request: Request, viewer: Administering, db: Db, user_id: int) -> HTMLResponse:
    settings = settings_of(request)
    with db.write() as session:
        email = users.get_user(session, user_id).email
        token, expires_at = users.issue_password_link(session, user_id, settings, actor=viewer.email)
    url = absolute(request, users.password_link_url(settings, token))
    return shown_once(
        request, viewer, "password-link", f"{ADMIN}/users", subject=email, secrets=[("link", url)],
        facts=[("expires", expires_at)],
    )  # fmt: skip


# ---- API keys ----


def _keys_page(
    request: Request, db: Db, viewer: Viewer, problem: FormProblem | None = None, typed: dict[str, Any] | None = None
) -> HTMLResponse:
    with db.read() as session:
        keys = apikeys.public_keys(session)
    return render(
        request, "admin/api_keys.html", viewer, status=problem.status if problem else 200, keys=keys, roles=ROLES,
        problem=problem, typed=typed or {},
    )  # fmt: skip


@router.get("/api-keys", response_class=HTMLResponse)
def keys_page(request: Request, viewer: Administering, db: Db) -> HTMLResponse:
    return _keys_page(request, db, viewer)


@router.post("/api-keys", response_class=HTMLResponse)
def create_key(request: Request, viewer: Administering, db: Db, form: Form) -> Response:
    typed = fields_of(form)

    def work() -> Response:
        data = ApiKeyCreate.model_validate(typed)
        with db.write() as session:
            key, secret = apikeys.create_key(session, data, created_by=viewer.email)
        return shown_once(
            request, viewer, "api-key", f"{ADMIN}/api-keys", subject=key.name, secrets=[("key", secret)],
            facts=[("role", key.role)],
        )  # fmt: skip

    return attempt(work, lambda problem: _keys_page(request, db, viewer, problem, typed))


@router.post("/api-keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(request: Request, viewer: Administering, db: Db, key_id: int) -> Response:
    with db.write() as session:
        apikeys.revoke_key(session, key_id, revoked_by=viewer.email)
    request.app.state.principals.forget(key_id)
    return see_other(f"{ADMIN}/api-keys")


# ---- the risk matrix ----


def _matrix_page(
    request: Request, db: Db, viewer: Viewer, version: int | None = None, *, problem: FormProblem | None = None,
    failed: str = "", publish_text: str | None = None, rationale: str = "",
) -> HTMLResponse:  # fmt: skip
    """A version (the current one unless named) as a grid, every version, and the publish and rescore forms;
    `failed` names the form `problem` belongs to."""
    with db.read() as session:
        current = matrices.current(session)
        shown = current if version is None else matrices.get(session, version)
        versions = matrices.list_versions(session)
    return render(
        request, "admin/matrix.html", viewer, status=problem.status if problem else 200, shown=shown,
        spec=shown.parsed(), current=current, versions=sorted(versions, key=lambda m: -m.version), problem=problem,
        failed=failed, publish_text=as_yaml(current.parsed()) if publish_text is None else publish_text,
        rationale=rationale,
    )  # fmt: skip


@router.get("/matrix", response_class=HTMLResponse)
def matrix_page(request: Request, viewer: Administering, db: Db) -> HTMLResponse:
    return _matrix_page(request, db, viewer)


@router.get("/matrix/{version}", response_class=HTMLResponse)
def matrix_version_page(request: Request, viewer: Administering, db: Db, version: int) -> HTMLResponse:
    return _matrix_page(request, db, viewer, version)


@router.post("/matrix", response_class=HTMLResponse)
def publish_matrix(request: Request, viewer: Administering, db: Db, form: Form) -> Response:
    """As POST /api/v1/matrices: a new version; risks keep theirs until reassessed or rescored."""
    text = str(form.get("spec", ""))

    def work() -> Response:
        spec = MatrixSpec.model_validate(document(text))
        with db.write() as session:
            matrices.publish(session, spec, actor=viewer.email)
        return see_other(f"{ADMIN}/matrix")

    return attempt(
        work, lambda problem: _matrix_page(request, db, viewer, problem=problem, failed="publish", publish_text=text)
    )


@router.post("/matrix/{version}/rescore", response_class=HTMLResponse)
def rescore(request: Request, viewer: Administering, db: Db, form: Form, version: int) -> Response:
    """As POST /api/v1/matrices/{version}/rescore: every open risk moved onto this (the current) version."""
    typed = fields_of(form)

    def work() -> Response:
        data = RescoreRequest.model_validate(typed)
        with db.write() as session:
            result = adoption.rescore_all(session, matrices.get(session, version), data.rationale, viewer.principal,
                                       settings_of(request))  # fmt: skip
        return render(request, "admin/rescored.html", viewer, result=result)

    return attempt(
        work,
        lambda problem: _matrix_page(
            request, db, viewer, version, problem=problem, failed="rescore", rationale=typed.get("rationale", "")
        ),
    )


# ---- calendar feed tokens ----


def _feed_tokens_page(
    request: Request, db: Db, viewer: Viewer, problem: FormProblem | None = None, typed: dict[str, Any] | None = None
) -> HTMLResponse:
    with db.read() as session:
        tokens = calendar.list_tokens(session)
    return render(
        request, "admin/feed_tokens.html", viewer, status=problem.status if problem else 200, tokens=tokens,
        problem=problem, typed=typed or {},
    )  # fmt: skip


@router.get("/feed-tokens", response_class=HTMLResponse)
def feed_tokens_page(request: Request, viewer: Administering, db: Db) -> HTMLResponse:
    return _feed_tokens_page(request, db, viewer)


@router.post("/feed-tokens", response_class=HTMLResponse)
def create_feed_token(request: Request, viewer: Administering, db: Db, form: Form) -> Response:
    typed = fields_of(form)

    def work() -> Response:
        data = FeedTokenCreate.model_validate(typed)
        with db.write() as session:
            token, secret = calendar.create_token(session, data, viewer.principal)
        url = absolute(request, f"{calendar.FEED_PATH}?token={secret}")
        return shown_once(
            request, viewer, "feed-token", f"{ADMIN}/feed-tokens", subject=token.name,
            secrets=[("feed-url", url), ("token", secret)], facts=[("owner", token.owner or "")],
        )  # fmt: skip

    return attempt(work, lambda problem: _feed_tokens_page(request, db, viewer, problem, typed))


@router.post("/feed-tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_feed_token(request: Request, viewer: Administering, db: Db, token_id: int) -> Response:
    with db.write() as session:
        calendar.revoke_token(session, token_id, viewer.principal)
    return see_other(f"{ADMIN}/feed-tokens")

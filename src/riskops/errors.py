"""Domain errors and their RFC 9457 problem-details answers, in one place."""

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    status = 400
    slug = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class BadRequest(DomainError):
    status, slug = 400, "bad-request"


class InvalidBody(BadRequest):
    """A body refused for reasons that name no field of ours (another system's message): `errors` in words."""

    def __init__(self, detail: str, reasons: list[str], **extra: Any):
        super().__init__(detail, **extra)
        self.reasons = reasons


class Unauthorized(DomainError):
    status, slug = 401, "unauthorized"


class Forbidden(DomainError):
    status, slug = 403, "forbidden"


class NotFound(DomainError):
    status, slug = 404, "not-found"


class Conflict(DomainError):
    status, slug = 409, "conflict"


class InvalidTransition(Conflict):
    slug = "invalid-transition"


class PreconditionFailed(DomainError):
    status, slug = 412, "precondition-failed"


def stale(if_match: str | None, etag: str) -> bool:
    """Whether an If-Match header names an older version than `etag` (weak or strong alike): a write that does is
    refused with PreconditionFailed, not merged. No header, or `*`, names any version."""
    if if_match is None or if_match.strip() == "*":
        return False
    return etag not in {tag.strip().removeprefix("W/") for tag in if_match.split(",")}


class PayloadTooLarge(DomainError):
    status, slug = 413, "payload-too-large"


class Unprocessable(DomainError):
    status, slug = 422, "validation-error"


class ProtocolError(DomainError):
    """A refusal whose shape another system's protocol fixes (PagerDuty's Events API): answered as `body`, not as
    a problem."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(str(body))
        self.status, self.body = status, body


def field_error(loc: list[str | int] | tuple[str | int, ...], message: str, **extra: Any) -> dict[str, Any]:
    return {"loc": list(loc), "field": ".".join(str(p) for p in loc), "message": message, **extra}


def problem(
    status: int, slug: str, detail: str, instance: str, *, headers: Mapping[str, str] | None = None, **members: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://riskops.dev/problems/{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in members.items() if v is not None})
    all_headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    all_headers.update(headers or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=all_headers or None)


def internal_error(instance: str, request_id: str | None) -> JSONResponse:
    return problem(
        500, "internal-error", "An unexpected error occurred; it has been logged.", instance, request_id=request_id
    )


# How long a client should wait before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = 5


def database_unavailable(exc: BaseException) -> bool:
    """A failure to reach or keep the database (or a busy one), not a fault of the request: worth a retry."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, PoolTimeout | psycopg.OperationalError)


def _answer(request: Request, status: int, slug: str, detail: str, **members: Any) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return problem(status, slug, detail, request.url.path, request_id=request_id, **members)


def _methods_for(request: Request) -> list[str]:
    """The methods the OpenAPI document gives this request's path: what a client was told it may call."""
    path = request.url.path
    matching = {t: ops for t, ops in request.app.openapi()["paths"].items() if compile_path(t)[0].match(path)}
    literal = {t: ops for t, ops in matching.items() if "{" not in t}  # /risks/import, not /risks/{risk_ref}
    return sorted({method.upper() for operations in (literal or matching).values() for method in operations})


def validation_errors(found: Sequence[Any], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """pydantic's or FastAPI's errors as field problems. FastAPI's locations start with where the value came from
    (body, query): kept, as it tells one from the other; `prefix` gives pydantic's the same start."""
    out = []
    for err in found:
        loc = [*prefix, *err.get("loc", ())]
        out.append(field_error(loc, err.get("msg", "invalid"), type=err.get("type")))
    return out


def invalid_request(errors: list[dict[str, Any]]) -> str:
    """The detail of a 422 for invalid fields: the API's and the console's forms' words."""
    return "Invalid request: " + ", ".join(f"{e['field']}: {e['message']}" for e in errors[:3])


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return _answer(request, exc.status, exc.slug, exc.detail, errors=exc.errors, **exc.extra)

    @app.exception_handler(InvalidBody)
    async def _invalid_body(request: Request, exc: InvalidBody) -> JSONResponse:
        return _answer(request, exc.status, exc.slug, exc.detail, errors=exc.reasons, **exc.extra)

    @app.exception_handler(ProtocolError)
    async def _protocol(request: Request, exc: ProtocolError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        return _answer(request, 422, "validation-error", invalid_request(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and request.method in ("POST", "PUT", "PATCH"):
            # FastAPI's word for a body it could not even decode (not JSON, not the declared form): bad input
            # like any other, so the same 422 naming the body.
            return _answer(
                request, 422, "validation-error", f"The request body could not be read: {exc.detail}.",
                errors=[field_error(("body",), "not a readable JSON (or form) body")],
            )  # fmt: skip
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Allow names every method the path takes (RFC 9110), not one route's
            headers["Allow"] = ", ".join(_methods_for(request))
        return _answer(request, exc.status_code, "http-error", str(exc.detail), headers=headers)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # any other database error is a bug: the 500 below, logged with its traceback
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        log.warning("database unavailable: %s: %s", type(cause).__name__, str(cause).strip().partition("\n")[0])
        return _answer(
            request, 503, "database-unavailable", "The database cannot be reached; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )  # fmt: skip

    for error in (DBAPIError, PoolTimeout, psycopg.Error):
        app.add_exception_handler(error, _database)

    # Starlette answers with this handler and then re-raises; the request guard logs the error and keeps the connection.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(request.url.path, getattr(request.state, "request_id", None))


# ---- the OpenAPI document: every problem answer an operation can give ----


class FieldProblem(BaseModel):
    """What is wrong and where: a field (`loc`, `field`), or a row and column of an imported file."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] | None = Field(default=None, description="Where the value came from (body, query, path...).")
    field: str | None = Field(default=None, description="`loc` joined with dots, e.g. `body.title`.")
    message: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem; some carry more members (e.g. `allowed`, `waiting_for`, `pending_steps`)."""

    model_config = ConfigDict(extra="allow", title="ProblemDetails")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldProblem | str] | None = Field(
        default=None, description="One entry per invalid field; a reason in words where no field applies (an alert)."
    )
    request_id: str | None = Field(default=None, description="Also in the X-Request-ID header and the server's log.")


_PROBLEMS = {
    401: "No valid API key or token was given.",
    403: "The key's role does not allow this.",
    404: "Something named in the path does not exist.",
    409: "The change conflicts with the current state.",
    412: "The If-Match ETag is not the current one.",
    413: "The request body is larger than this endpoint accepts.",
    422: "The request is invalid; `errors` names each field.",
    500: "An unexpected error; it is logged under `request_id`.",
    503: "The database cannot be reached; retry after `Retry-After` seconds.",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}


def _problem_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    parameters = operation.get("parameters", [])
    statuses = {500, 503}
    if path.startswith("/api/"):  # every API call needs a key or a token; only the health checks are open
        statuses |= {401, 403}
    if any(p["in"] in ("path", "query") for p in parameters):
        statuses.add(404)  # a path names a row; a filter may name one too (?risk=R-0042)
    if parameters:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {413, 422}
    # a change (the console's forms too), or a read of something not there yet (an open cycle's snapshot)
    if path.startswith("/api/") or method in ("post", "put", "patch", "delete"):
        statuses.add(409)
    if any(p["in"] == "header" and p["name"].lower() == "if-match" for p in parameters):
        statuses.add(412)
    return statuses


def problem_answer(description: str) -> dict[str, Any]:
    """A problem answer for an operation to declare beyond the usual ones: `responses={400: problem_answer(...)}`."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}


def _problem_response(status: int) -> dict[str, Any]:
    response = problem_answer(_PROBLEMS[status])
    if status == 503:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
    return response


def _has_body_schema(response: dict[str, Any]) -> bool:
    return any(media.get("schema") for media in response.get("content", {}).values())


def _is_fastapi_default(response: dict[str, Any]) -> bool:
    """FastAPI's own 422 (its HTTPValidationError shape), which our problem answer replaces."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def document_problems(document: dict[str, Any]) -> None:
    """Add the problem answers to every operation of a generated OpenAPI document, in place.

    A response the route declares itself keeps its description, and its body shape when it has one.
    """
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True  # the request guard drops `?name=`: the same as absent
            responses = operation.setdefault("responses", {})
            for status in sorted(_problem_statuses(path, method, operation)):
                declared = responses.get(str(status))
                if declared is None or _is_fastapi_default(declared):
                    responses[str(status)] = _problem_response(status)
                elif not _has_body_schema(declared):
                    declared.update({**_problem_response(status), "description": declared["description"]})
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}), ProblemDetails=problem_schema)
    if "/HTTPValidationError" not in json.dumps(document["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)

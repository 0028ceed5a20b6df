"""Domain errors and their RFC 9457 problem-details answers, in one place."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


class PayloadTooLarge(DomainError):
    status, slug = 413, "payload-too-large"


class Unprocessable(DomainError):
    status, slug = 422, "validation-error"


def field_error(loc: list[str | int] | tuple[str | int, ...], message: str, **extra: Any) -> dict[str, Any]:
    return {"loc": list(loc), "field": ".".join(str(p) for p in loc), "message": message, **extra}


def problem(status: int, slug: str, detail: str, instance: str, **members: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://riskops.dev/problems/{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in members.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        # FastAPI prefixes where the value came from; keep it, it tells body from query.
        out.append(field_error(loc, err.get("msg", "invalid"), type=err.get("type")))
    return out


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.slug, exc.detail, request.url.path, errors=exc.errors, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        where = ", ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
        return problem(422, "validation-error", f"Invalid request: {where}", request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http-error", str(exc.detail), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal-error", "An unexpected error occurred; it has been logged.", request.url.path)

"""Inbound alert endpoints (authenticated by the integration's token) and their administration."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from riskops.auth import Admin, Db, settings_of
from riskops.db import Database
from riskops.errors import PayloadTooLarge, problem_answer
from riskops.integrations import service
from riskops.integrations.models import (
    AlertmanagerPayload,
    GenericAlert,
    Integration,
    IntegrationCreate,
    IntegrationCreated,
    IntegrationKind,
    IntegrationPublic,
    ReceivedAlertPublic,
)
from riskops.integrations.signals import Signal, from_alertmanager, from_generic
from riskops.pagination import Page

admin = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])
inbound = APIRouter(prefix="/api/v1/inbound", tags=["inbound alerts"])


@admin.post("", status_code=status.HTTP_201_CREATED)
def create_integration(data: IntegrationCreate, db: Db, who: Admin) -> IntegrationCreated:
    """The token (and a generic integration's signing secret) is in this answer only."""
    with db.write() as session:
        integration, token = service.create(session, data, who)
        return IntegrationCreated(
            **service.present(integration).model_dump(), token=token, signing_secret=integration.signing_secret
        )


@admin.get("")
def list_integrations(db: Db, _: Admin) -> list[IntegrationPublic]:
    with db.read() as session:
        return [service.present(i) for i in service.list_integrations(session)]


@admin.get("/{integration_id}/alerts")
def received_alerts(
    integration_id: int, db: Db, _: Admin, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Page[ReceivedAlertPublic]:
    """Every body received, newest first: as received but with credentials (routing_key, tokens, Authorization)
    masked as "***"; when, what it did, which incident. Admin keys only."""
    with db.read() as session:
        rows, next_cursor = service.received(session, service.get(session, integration_id), cursor=cursor, limit=limit)
        return Page(items=[ReceivedAlertPublic.model_validate(r) for r in rows], next_cursor=next_cursor)


# ---- inbound ----


async def _body(request: Request) -> bytes:
    limit = settings_of(request).inbound_max_bytes
    if int(request.headers.get("content-length") or 0) > limit:
        raise PayloadTooLarge(f"Alert bodies are limited to {limit} bytes.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Alert bodies are limited to {limit} bytes.")
    return body


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token")


def _authenticate(db: Database, token: str | None, kind: IntegrationKind) -> Integration:
    with db.read() as session:
        return service.authenticate(session, token, kind)


async def _receive(
    request: Request, db: Database, integration: Integration, body: bytes, model: type[service.Alert],
    to_signal: Callable[[service.Alert], Signal],
) -> JSONResponse:  # fmt: skip
    settings = settings_of(request)
    receipt = await run_in_threadpool(service.receive, db, integration, body, model, to_signal, settings)
    return JSONResponse(
        {"status": "ok", "outcome": receipt.outcome, "detail": receipt.detail, "incident_id": receipt.incident_id,
         "received_alert_id": receipt.id},
        status_code=status.HTTP_202_ACCEPTED,
    )  # fmt: skip


# Read raw (size-limited, then parsed as the sender's format), the body is not seen by FastAPI: declared here.
_JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
}
_INVALID_ALERT = problem_answer("The body is not the sender's format; it is kept as rejected, `errors` says why.")


@inbound.post(
    "/alertmanager", status_code=status.HTTP_202_ACCEPTED, openapi_extra=_JSON_BODY, responses={400: _INVALID_ALERT}
)
async def alertmanager(request: Request, db: Db) -> JSONResponse:
    """Alertmanager's webhook receiver body (version 4), as Alertmanager sends it."""
    body = await _body(request)
    integration = await run_in_threadpool(_authenticate, db, _token(request), IntegrationKind.alertmanager)
    return await _receive(request, db, integration, body, AlertmanagerPayload, from_alertmanager)


@inbound.post(
    "/generic", status_code=status.HTTP_202_ACCEPTED, openapi_extra=_JSON_BODY, responses={400: _INVALID_ALERT}
)
async def generic(request: Request, db: Db) -> JSONResponse:
    """riskops' generic alert shape, with the integration token."""
    body = await _body(request)
    integration = await run_in_threadpool(_authenticate, db, _token(request), IntegrationKind.generic)
    return await _receive(request, db, integration, body, GenericAlert, from_generic)


@inbound.post(
    "/generic/{integration_id}",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_JSON_BODY,
    responses={400: _INVALID_ALERT},
)
async def generic_signed(integration_id: int, request: Request, db: Db) -> JSONResponse:
    """The generic shape, signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)."""
    body = await _body(request)

    def check() -> Integration:
        with db.read() as session:
            return service.authenticate_signed(session, integration_id, request.headers, body)

    integration = await run_in_threadpool(check)
    return await _receive(request, db, integration, body, GenericAlert, from_generic)


# PagerDuty's own contract, answered as PagerDuty answers: a JSON event in, {"status", ...} out.
_PAGERDUTY_ANSWER = {
    "type": "object",
    "properties": {
        "status": {"type": "string"},
        "message": {"type": "string"},
        "dedup_key": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}


@inbound.post(
    "/pagerduty/v2/enqueue",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_JSON_BODY,
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"schema": _PAGERDUTY_ANSWER}}},
        400: {"description": "Invalid event", "content": {"application/json": {"schema": _PAGERDUTY_ANSWER}}},
    },
)
async def pagerduty(request: Request, db: Db) -> JSONResponse:
    """PagerDuty Events API v2: `routing_key` is the integration token; answers as PagerDuty does."""
    body = await _body(request)
    token = service.pagerduty_routing_key(body)
    integration = await run_in_threadpool(_authenticate, db, token, IntegrationKind.pagerduty)
    dedup_key = await run_in_threadpool(service.receive_pagerduty, db, integration, body, settings_of(request))
    return JSONResponse(
        {"status": "success", "message": "Event processed", "dedup_key": dedup_key},
        status_code=status.HTTP_202_ACCEPTED,
    )

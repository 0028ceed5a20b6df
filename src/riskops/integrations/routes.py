"""Inbound alert endpoints (authenticated by the integration's token) and their administration."""

import json
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from riskops.auth import Admin, Db
from riskops.config import Settings
from riskops.db import Database, storable
from riskops.errors import PayloadTooLarge, Unauthorized
from riskops.integrations import service
from riskops.integrations.models import (
    AlertmanagerPayload,
    GenericAlert,
    Integration,
    IntegrationCreate,
    IntegrationCreated,
    IntegrationKind,
    IntegrationPublic,
    PagerDutyEvent,
    ReceivedAlert,
    ReceivedAlertPublic,
)
from riskops.pagination import Page
from riskops.webhooks import signing

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
    limit: int = request.app.state.settings.inbound_max_bytes
    if int(request.headers.get("content-length") or 0) > limit:
        raise PayloadTooLarge(f"Alert bodies are limited to {limit} bytes.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Alert bodies are limited to {limit} bytes.")
    return body


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token")


def _authenticate(db: Database, token: str | None, kind: IntegrationKind) -> Integration:
    if token:
        with db.read() as session:
            integration = service.by_token(session, token, kind)
        if integration is not None:
            return integration
    raise Unauthorized(f"A valid {kind} integration token is required (Authorization: Bearer, or ?token=).")


def _process(
    db: Database, settings: Settings, integration: Integration, signal: service.Signal, body: bytes
) -> ReceivedAlert:
    """One unit of work; a racing duplicate that lost the open-group index is applied again, and attaches."""
    for attempt in range(3):
        try:
            with db.write() as session:
                return service.handle(session, integration, signal, body, settings)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class Rejected(Exception):
    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _parse(db: Database, integration: Integration, body: bytes, model: type[BaseModel]) -> Any:
    """The body as `model`; otherwise it is kept as rejected, with the reasons, and Rejected is raised."""
    try:
        return model.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": f"not JSON: {exc}"}]
        reasons = ["{}: {}".format(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in errors]
        _reject(db, integration, body, reasons)
        raise Rejected(reasons) from exc


def _reject(db: Database, integration: Integration, body: bytes, reasons: list[str]) -> None:
    with db.write() as session:
        service.reject(session, integration, body, "; ".join(reasons))


def _answer(receipt: ReceivedAlert) -> JSONResponse:
    return JSONResponse(
        {"status": "ok", "outcome": receipt.outcome, "detail": receipt.detail, "incident_id": receipt.incident_id,
         "received_alert_id": receipt.id},
        status_code=status.HTTP_202_ACCEPTED,
    )  # fmt: skip


def _bad(reasons: list[str]) -> JSONResponse:
    return JSONResponse(
        {"type": "https://riskops.dev/problems/invalid-alert", "title": "Bad Request", "status": 400,
         "detail": "The alert body is invalid; it was kept for inspection and changed nothing.", "errors": reasons},
        status_code=400, media_type="application/problem+json",
    )  # fmt: skip


async def _receive(
    request: Request, db: Database, integration: Integration, body: bytes, model: type[BaseModel],
    to_signal: Callable[[Any], service.Signal],
) -> JSONResponse:  # fmt: skip
    try:
        parsed = await run_in_threadpool(_parse, db, integration, body, model)
    except Rejected as exc:
        return _bad(exc.reasons)
    return _answer(await run_in_threadpool(_process, db, _settings(request), integration, to_signal(parsed), body))


@inbound.post("/alertmanager", status_code=status.HTTP_202_ACCEPTED)
async def alertmanager(request: Request, db: Db) -> JSONResponse:
    """Alertmanager's webhook receiver body (version 4), as Alertmanager sends it."""
    body = await _body(request)
    integration = await run_in_threadpool(_authenticate, db, _token(request), IntegrationKind.alertmanager)
    return await _receive(request, db, integration, body, AlertmanagerPayload, service.from_alertmanager)


@inbound.post("/generic", status_code=status.HTTP_202_ACCEPTED)
async def generic(request: Request, db: Db) -> JSONResponse:
    """riskops' generic alert shape, with the integration token."""
    body = await _body(request)
    integration = await run_in_threadpool(_authenticate, db, _token(request), IntegrationKind.generic)
    return await _receive(request, db, integration, body, GenericAlert, service.from_generic)


@inbound.post("/generic/{integration_id}", status_code=status.HTTP_202_ACCEPTED)
async def generic_signed(integration_id: int, request: Request, db: Db) -> JSONResponse:
    """The generic shape, signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)."""
    body = await _body(request)
    h = request.headers

    def check() -> Integration:
        with db.read() as session:
            integration = session.get(Integration, integration_id) if storable(integration_id) else None
        if (
            integration is None or integration.kind != IntegrationKind.generic or not integration.signing_secret
            or not signing.verify(
                integration.signing_secret, h.get("webhook-id", ""), h.get("webhook-timestamp", ""), body,
                h.get("webhook-signature", ""), now=time.time(),
            )
        ):  # fmt: skip
            raise Unauthorized("A valid Standard Webhooks signature from this integration is required.")
        return integration

    integration = await run_in_threadpool(check)
    return await _receive(request, db, integration, body, GenericAlert, service.from_generic)


# PagerDuty's own contract, answered as PagerDuty answers: a JSON event in, {"status", ...} out.
_PAGERDUTY_ANSWER = {"type": "object", "properties": {"status": {"type": "string"}, "message": {"type": "string"}}}


@inbound.post(
    "/pagerduty/v2/enqueue",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
    responses={
        202: {"description": "Accepted", "content": {"application/json": {"schema": _PAGERDUTY_ANSWER}}},
        400: {"description": "Invalid event", "content": {"application/json": {"schema": _PAGERDUTY_ANSWER}}},
    },
)
async def pagerduty(request: Request, db: Db) -> JSONResponse:
    """PagerDuty Events API v2: `routing_key` is the integration token; answers as PagerDuty does."""
    body = await _body(request)
    try:
        data = json.loads(body)
    except ValueError:
        return _pd_invalid(["Invalid JSON"])
    token = data.get("routing_key") if isinstance(data, dict) else None
    integration = await run_in_threadpool(_authenticate, db, token, IntegrationKind.pagerduty)
    try:
        event: PagerDutyEvent = await run_in_threadpool(_parse, db, integration, body, PagerDutyEvent)
    except Rejected as exc:
        return _pd_invalid(exc.reasons)
    problems = []
    if event.event_action == "trigger" and event.payload is None:
        problems.append("'payload' is missing or blank")
    if event.event_action != "trigger" and not event.dedup_key:
        problems.append("'dedup_key' is missing or blank")
    if problems:
        await run_in_threadpool(_reject, db, integration, body, problems)
        return _pd_invalid(problems)
    dedup_key = event.dedup_key or uuid.uuid4().hex
    await run_in_threadpool(
        _process, db, _settings(request), integration, service.from_pagerduty(event, dedup_key), body
    )
    return JSONResponse(
        {"status": "success", "message": "Event processed", "dedup_key": dedup_key},
        status_code=status.HTTP_202_ACCEPTED,
    )


def _pd_invalid(errors: list[str]) -> JSONResponse:
    return JSONResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors}, status_code=400
    )

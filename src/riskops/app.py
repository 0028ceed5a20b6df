"""The FastAPI application: routers, problem-details errors, health checks and metrics."""

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from riskops import docs, errors, migrations, runtime
from riskops.apikeys.models import Role
from riskops.apikeys.routes import router as apikeys_router
from riskops.audit.routes import router as audit_router
from riskops.auth import Db, PrincipalCache, bearer, require, settings_of
from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.console import routes as console
from riskops.continuity.routes import router as continuity_router
from riskops.controls.routes import router as controls_router
from riskops.db import Database, make_engine
from riskops.events.routes import router as events_router
from riskops.guard import RequestGuard
from riskops.incidents.escalations.routes import router as escalations_router
from riskops.incidents.routes import activation as activation_router
from riskops.incidents.routes import router as incidents_router
from riskops.integrations.routes import admin as integrations_router
from riskops.integrations.routes import inbound as inbound_router
from riskops.kris.routes import router as kris_router
from riskops.metrics import Metrics, delivery_backlog
from riskops.playbooks.routes import router as playbooks_router
from riskops.quant.routes import router as quant_router
from riskops.reviews.routes import register as register_router
from riskops.reviews.routes import router as reviews_router
from riskops.risks.acceptances.routes import router as acceptances_router
from riskops.risks.appetite.routes import router as appetite_router
from riskops.risks.matrices.routes import router as matrices_router
from riskops.risks.routes import router as risks_router
from riskops.treatments.routes import router as treatments_router
from riskops.users.routes import router as users_router
from riskops.webhooks.routes import router as webhooks_router
from riskops.worker import Worker

log = logging.getLogger("riskops")
health_router = APIRouter(tags=["health"])  # the routes at the end of this module


class RiskOpsAPI(FastAPI):
    """FastAPI with the request guard outside everything (Starlette's error middleware included), measuring every
    request, and the problem answers in the OpenAPI document."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestGuard(
            super().build_middleware_stack(), self.state.settings, lambda: self.openapi()["paths"],
            self.state.metrics.observe,
        )  # fmt: skip

    def openapi(self) -> dict[str, Any]:
        first = self.openapi_schema is None
        document = super().openapi()  # built once, then cached by FastAPI
        if first:
            errors.document_problems(document)
        return document


def served_app() -> FastAPI:
    """The app as `riskops serve` runs it: settings from the environment, the collector tuned once started."""
    return create_app(tune_collector=True)


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, tune_collector: bool = False
) -> FastAPI:
    settings = settings or Settings()  # from the environment, as `riskops serve` runs it
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = Worker(app.state.database, settings) if settings.scheduler_enabled else None
        app.state.worker = app.state.metrics.scheduler.worker = worker  # for /readyz and /metrics
        if worker is not None:
            worker.start()
        if tune_collector:
            runtime.tune_collector()  # the start-up heap is complete: routes, schema and worker are built
        yield
        if worker is not None:
            worker.stop()
        engine.dispose()

    app = RiskOpsAPI(
        title="riskops",
        version="0.1.0",
        summary="Risk register and crisis response.",
        description="All endpoints except /healthz and /readyz need `Authorization: Bearer <api key>`.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from riskops.docs, on assets installed with riskops (no CDN)
        redoc_url=None,
    )
    app.state.database = Database(engine)
    app.state.principals = PrincipalCache(settings.auth_cache_seconds)
    app.state.settings = settings
    app.state.metrics = Metrics(engine)
    app.state.worker = None  # until started
    errors.install_handlers(app)
    routers = (
        risks_router, playbooks_router, activation_router, incidents_router, escalations_router, webhooks_router,
        events_router,
        integrations_router, inbound_router, reviews_router, register_router, matrices_router, appetite_router,
        apikeys_router,
        acceptances_router,
        audit_router, users_router, health_router,
        treatments_router,
        continuity_router,
        controls_router,
        quant_router,
        kris_router,
    )  # fmt: skip
    for router in routers:
        app.include_router(router)
    if settings.console:
        console.install(app)
    docs.install(app)
    return app


# ---- health checks and metrics ----


class SchedulerState(BaseModel):
    last_tick_at: datetime | None = Field(description="When this process's scheduler last finished a tick.")
    seconds_since_tick: float = Field(description="Since that tick ended (since the scheduler started, before it).")
    stale_after_seconds: float = Field(description="Beyond this the scheduler counts as stalled: 503.")


class DeliveryBacklog(BaseModel):
    due: int = Field(description="Pending webhook deliveries due now, to active subscriptions.")
    oldest_due_seconds: float = Field(description="How long the oldest of them has been due (0 if none).")


class _Checks(BaseModel):
    schema_revision: str | None = Field(default=None, serialization_alias="schema", description="Alembic revision.")
    scheduler: SchedulerState | None = Field(
        default=None, description="This process's scheduler; null when it runs none (RISKOPS_SCHEDULER_ENABLED=false)."
    )
    deliveries: DeliveryBacklog | None = Field(default=None, description="Null when the database cannot be read.")


class Ready(_Checks):
    status: Literal["ok"]


class Unready(_Checks):
    status: Literal["unavailable"]
    reason: str = Field(description="The first check that failed.")


# Written out, so that a client sees the members it always has; its parts are components already (through Ready).
_UNREADY_SCHEMA = Unready.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
_UNREADY_SCHEMA.pop("$defs", None)
_UNREADY = {
    "description": "Not ready: the database is unreachable, its schema is not at this code's revision, or this "
    "process's scheduler has finished no tick for longer than `scheduler.stale_after_seconds`. `reason` says which.",
    "content": {"application/json": {"schema": _UNREADY_SCHEMA}},
}


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@health_router.get(
    "/readyz", response_class=JSONResponse,
    responses={200: {"model": Ready, "description": "Ready, with what was checked."}, 503: _UNREADY},
)  # fmt: skip
def readyz(request: Request, database: Db) -> JSONResponse:
    """The database answers, its schema is at the revision this code expects, and the scheduler this process runs
    (if any) keeps ticking; with the webhook delivery backlog, which never makes the service unready."""
    now = utcnow()
    worker: Worker | None = request.app.state.worker
    since = worker.since_last_tick(now) if worker is not None else None
    scheduler = None
    if worker is not None and since is not None:
        scheduler = SchedulerState(
            last_tick_at=worker.last_tick_at, seconds_since_tick=round(since, 3), stale_after_seconds=worker.stale_after
        )
    expected = migrations.head()
    try:
        revision = migrations.current(database.engine)
        backlog = None
        if revision == expected:  # the tables are the ones this code knows
            with database.engine.connect() as conn:
                backlog = delivery_backlog(conn, now)
    except Exception as exc:  # any failure here means: not ready
        log.warning("readiness check failed: %s", exc)
        return _answer(Unready(status="unavailable", reason="database unreachable", scheduler=scheduler))
    checks = _Checks(schema_revision=revision, scheduler=scheduler)
    if backlog is not None:
        oldest = round(backlog.oldest_due_seconds(now), 3)
        checks.deliveries = DeliveryBacklog(due=backlog.due, oldest_due_seconds=oldest)
    reason = None
    if revision != expected:
        reason = f"schema at {revision}, expected {expected}"
    elif scheduler is not None and scheduler.seconds_since_tick > scheduler.stale_after_seconds:
        reason = f"scheduler stalled: no tick finished for {scheduler.seconds_since_tick:.0f} s"
    if reason is None:
        return _answer(Ready(status="ok", **dict(checks)))
    log.warning("not ready: %s", reason)
    return _answer(Unready(status="unavailable", reason=reason, **dict(checks)))


def _answer(readiness: Ready | Unready) -> JSONResponse:
    status = 200 if isinstance(readiness, Ready) else 503
    return JSONResponse(readiness.model_dump(mode="json", by_alias=True), status_code=status)


_read_key = require(Role.read)


async def _scraper(
    request: Request, database: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """RISKOPS_METRICS_TOKEN (compared in constant time), or else any API key with the read role."""
    token = settings_of(request).metrics_token
    if token is not None and credentials is not None:
        if hmac.compare_digest(credentials.credentials.encode(), token.get_secret_value().encode()):
            return
    await _read_key(request, database, credentials, None)  # a console session does not scrape


@health_router.get(
    "/metrics", dependencies=[Depends(_scraper)], response_class=Response,
    responses={
        200: {"description": "The Prometheus text format, version 0.0.4.", "content": {"text/plain": {}}},
        401: errors.problem_answer("No metrics token and no valid API key was given."),
        403: errors.problem_answer("The key's role does not allow this."),
    },
)  # fmt: skip
async def metrics(request: Request) -> Response:
    """Prometheus metrics: this process's requests and scheduler ticks, and the figures the database holds (every
    instance reports the same). `Authorization: Bearer` with RISKOPS_METRICS_TOKEN or a read API key."""
    registry: Metrics = request.app.state.metrics
    return Response(await run_in_threadpool(registry.exposition), media_type=CONTENT_TYPE_PLAIN_0_0_4)

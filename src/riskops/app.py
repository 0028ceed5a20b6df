"""The FastAPI application: routers, problem-details errors, health checks."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from starlette.types import ASGIApp

from riskops import errors, migrations, runtime
from riskops.apikeys.routes import router as apikeys_router
from riskops.audit.routes import router as audit_router
from riskops.auth import PrincipalCache
from riskops.config import Settings
from riskops.db import Database, make_engine
from riskops.events.routes import router as events_router
from riskops.guard import RequestGuard
from riskops.incidents.escalations.routes import router as escalations_router
from riskops.incidents.routes import activation as activation_router
from riskops.incidents.routes import router as incidents_router
from riskops.integrations.routes import admin as integrations_router
from riskops.integrations.routes import inbound as inbound_router
from riskops.playbooks.routes import router as playbooks_router
from riskops.reviews.routes import register as register_router
from riskops.reviews.routes import router as reviews_router
from riskops.risks.matrices.routes import router as matrices_router
from riskops.risks.routes import router as risks_router
from riskops.webhooks.routes import router as webhooks_router
from riskops.worker import Worker

log = logging.getLogger("riskops")

_UNREADY = {
    "description": "Not ready: the database is unreachable, or its schema is not at this code's revision.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"status": {"const": "unavailable"}, "reason": {"type": "string"}},
                "required": ["status", "reason"],
            }
        }
    },
}


class RiskOpsAPI(FastAPI):
    """FastAPI with the request guard outside everything (Starlette's error middleware included), and the
    problem answers in the OpenAPI document."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestGuard(super().build_middleware_stack(), self.state.settings, lambda: self.openapi()["paths"])

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
    )
    app.state.database = Database(engine)
    app.state.principals = PrincipalCache(settings.auth_cache_seconds)
    app.state.settings = settings
    errors.install_handlers(app)
    routers = (
        risks_router, playbooks_router, activation_router, incidents_router, escalations_router, webhooks_router,
        events_router,
        integrations_router, inbound_router, reviews_router, register_router, matrices_router, apikeys_router,
        audit_router,
    )  # fmt: skip
    for router in routers:
        app.include_router(router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: _UNREADY})
    def readyz() -> JSONResponse:
        """The database answers and its schema is at the revision this code expects."""
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            revision = migrations.current(engine)
        except Exception as exc:  # any failure here means: not ready
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)
        expected = migrations.head()
        if revision != expected:
            return JSONResponse(
                {"status": "unavailable", "reason": f"schema at {revision}, expected {expected}"}, status_code=503
            )
        return JSONResponse({"status": "ok", "schema": revision})

    return app

"""The app under benchmark: riskops' app as `riskops serve` serves it, plus one bare endpoint in the same process.

The bare endpoint costs only what uvicorn + Starlette + FastAPI cost per request, so the throughput
of a real endpoint divided by the bare one's says how much of a request the application itself takes.
"""

from typing import Any

from fastapi import FastAPI

from riskops.app import served_app


def create() -> FastAPI:
    app = served_app()

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, Any]:
        return {"status": "ok", "items": [1, 2, 3]}

    return app

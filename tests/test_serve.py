"""A real uvicorn under concurrent load: more requests in flight than worker threads and pooled connections."""

import asyncio
from pathlib import Path

import httpx

from tests.conftest import Keys
from tests.helpers import risk_body, running_service


def test_many_concurrent_requests_all_answer(database_url: str, keys: Keys, tmp_path: Path) -> None:
    """120 requests at once (the worker pool has 40 threads) must all succeed, with no pool exhaustion."""
    with running_service(database_url, tmp_path / "serve.log") as base:

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=120)
            async with httpx.AsyncClient(base_url=base, headers=keys.headers("write"), limits=limits, timeout=25) as c:
                created = (await c.post("/api/v1/risks", json=risk_body())).json()
                reads = [c.get(f"/api/v1/risks/{created['id']}") for _ in range(100)]
                writes = [c.post("/api/v1/risks", json=risk_body(title=f"burst {i}")) for i in range(20)]
                return [r.status_code for r in await asyncio.gather(*reads, *writes)]

        statuses = asyncio.run(burst())
    assert statuses.count(200) == 100 and statuses.count(201) == 20

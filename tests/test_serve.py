"""A real `riskops serve`: concurrent load, huge bodies, an unhandled error on a keep-alive connection, its log."""

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body, running_service


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


MiB = 1024 * 1024


def serve_pid(base: str) -> int:
    """The `riskops serve` process this test started for `base` (a child of this process, on its port)."""
    port = base.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"serve" in arguments and port in arguments:
            return int(entry.name)
    raise AssertionError(f"no riskops serve child on port {port.decode()}")


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def local_port(response: httpx.Response) -> int:
    """The client's end of the connection that carried `response` (read while it is open)."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_100_mb_body_is_refused_without_being_held(database_url: str, tmp_path: Path, declared: bool) -> None:
    """413 before authentication, and the server's peak memory grows by nothing near the body."""
    headers = {"Content-Type": "application/json", **({"Content-Length": str(100 * MiB)} if declared else {})}
    with running_service(database_url, tmp_path / "serve.log") as base, httpx.Client(base_url=base, timeout=60) as c:
        pid = serve_pid(base)
        assert c.post("/api/v1/risks", json=risk_body()).status_code == 401  # warm up the first request's path
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the current size
        before = memory_kib(pid, "VmRSS")
        chunk = b" " * MiB
        response = c.post("/api/v1/risks", content=(chunk for _ in range(100)), headers=headers)
        peak = memory_kib(pid, "VmHWM")
    assert_problem(response, 413)
    assert (peak - before) * 1024 < 20 * MiB, f"serve grew by {(peak - before) // 1024} MiB"


def test_an_unhandled_error_answers_500_and_keeps_the_connection(
    backend: str, database_url: str, engine: Engine, keys: Keys, tmp_path: Path
) -> None:
    """A database that fails an insert for a reason riskops does not expect: 500, then the next request on the
    same keep-alive connection is answered."""
    failing = {
        "sqlite": ["CREATE TRIGGER test_fails BEFORE INSERT ON risk BEGIN SELECT RAISE(ABORT, 'test failure'); END"],
        "postgresql": [
            "CREATE FUNCTION test_fails() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'test failure'; END $$",
            "CREATE TRIGGER test_fails BEFORE INSERT ON risk FOR EACH ROW EXECUTE FUNCTION test_fails()",
        ],
    }[backend]
    with engine.begin() as conn:
        for statement in failing:
            conn.execute(text(statement))
    log_path = tmp_path / "serve.log"
    try:
        with (
            running_service(database_url, log_path) as base,
            httpx.Client(base_url=base, headers=keys.headers("write"), timeout=30) as client,
        ):
            failed = client.post("/api/v1/risks", json=risk_body())
            failed_on = local_port(failed)
            after = client.get("/api/v1/risks")
            after_on = local_port(after)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_fails" + (" ON risk" if backend == "postgresql" else "")))
            if backend == "postgresql":
                conn.execute(text("DROP FUNCTION test_fails()"))
    problem = assert_problem(failed, 500)
    assert problem["request_id"] == failed.headers["x-request-id"]
    assert after.status_code == 200 and after_on == failed_on
    logged = [line for line in log_path.read_text().splitlines() if f"[{problem['request_id']}]" in line]
    assert any("unhandled error on POST /api/v1/risks" in line for line in logged), log_path.read_text()
    assert "Traceback" in log_path.read_text() and "test failure" in log_path.read_text()


def test_secrets_in_urls_never_reach_the_log(database_url: str, keys: Keys, tmp_path: Path) -> None:
    """Whether the server accepts them or not (an API key does not open the feed), secrets in URLs stay out."""
    log_path = tmp_path / "serve.log"
    secrets = {"inbound": "rki_not_a_real_token_4711", "password": "hunter2hunter2", "routing": "rk_secret_0815"}
    with (
        running_service(database_url, log_path, ("RISKOPS_LOG_LEVEL", "info")) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        answers = [
            client.get("/api/v1/register/calendar.ics", params={"token": keys.read}),
            client.post(f"/api/v1/inbound/alertmanager?token={secrets['inbound']}", json={"alerts": []}),
            client.get(
                f"/api/v1/risks?q=flood&Password={secrets['password']}&ROUTING_KEY={secrets['routing']}",
                headers=keys.headers("read"),
            ),
        ]
    log = log_path.read_text()
    for secret in [keys.read, *secrets.values()]:
        assert secret not in log
    for shown in ("calendar.ics?token=***", "alertmanager?token=***", "q=flood&Password=***&ROUTING_KEY=***"):
        assert shown in log, log
    for answer in answers:  # the access log line carries the request's id
        lines = [line for line in log.splitlines() if f"[{answer.headers['x-request-id']}]" in line]
        assert any("riskops.access" in line for line in lines), log
    assert "uvicorn.access" not in log  # the guard's line replaces uvicorn's: one line per request

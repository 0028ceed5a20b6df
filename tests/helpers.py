import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, select

from riskops.models import metadata


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table: equal before and after means a refused request wrote nothing."""
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


def risk_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Primary data centre flooded",
        "description": "River flood takes out the primary site.",
        "category": "operational",
        "owner": "head of infrastructure",
        "inherent": {"likelihood": 3, "impact": 5},
        "residual": {"likelihood": 2, "impact": 4},
        "treatment": "mitigate",
        "tags": ["Facilities", "dc"],
    }
    body.update(overrides)
    return body


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 answer with the status, naming `field` among its errors when given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields, f"{field} not in {fields}"
    return body


def debian_binary(binary: Path, package: str, require: str) -> Path:
    """A real server the tests start, from a Debian package: skipped where it is missing, failed instead when the
    environment variable `require` is 1 (CI installs it and sets it)."""
    if not binary.exists():
        message = f"{binary} is not installed (Debian package {package})"
        if os.environ.get(require) == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return binary


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    """What `check` gives once it gives something true, asked every 0.2 s; an AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_service(database_url: str, log_path: Path, *extra_env: tuple[str, str]) -> Iterator[str]:
    """`riskops serve` as a real process on a free loopback port; yields its base URL once it is ready."""
    port = free_port()
    env = {**os.environ, "RISKOPS_DATABASE_URL": database_url, "RISKOPS_LOG_LEVEL": "warning", **dict(extra_env)}
    command = [sys.executable, "-m", "riskops", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w+") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert server.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise AssertionError("riskops serve did not become ready: " + log_path.read_text())
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on the engine meanwhile (transaction control left out)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)

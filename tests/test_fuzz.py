"""PROCESS TEST: Schemathesis drives a real `riskops serve` through its own /openapi.json with every check (its default)
(server errors, status codes, content types and bodies against the documented schema, rejected invalid input,
methods and Allow headers, stateful links), bounded in examples and time, on SQLite and PostgreSQL.

Done means no failure at all; tests/schemathesis.toml holds the one allowance and why.
"""

import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from tests.helpers import risk_body, running_service

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 5  # per operation and phase
SEED = 20261128  # fixed, so that a failure can be replayed; change it to explore


def test_fuzzing_the_openapi_document_finds_nothing(engine: Engine, database_url: str, tmp_path: Path) -> None:
    with Session(engine) as session:
        _, key = apikeys.create_key(session, ApiKeyCreate(name="fuzzer", role=Role.admin), created_by="test")
        session.commit()
    with running_service(database_url, tmp_path / "serve.log") as base:
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{base}/api/v1/risks", json=risk_body(), headers=headers).status_code == 201
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG), "run",
                f"{base}/openapi.json", "-H", f"Authorization: Bearer {key}",
                "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1", "--max-time", "150",
                "--no-color", "--output-truncate", "false",
            ],
            capture_output=True, text=True, timeout=400,
        )  # fmt: skip
    (tmp_path / "schemathesis.txt").write_text(run.stdout + run.stderr)  # the whole report, kept with the test
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-5000:]

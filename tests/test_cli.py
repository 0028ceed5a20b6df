"""The `riskops` command as a user runs it: real processes, a real uvicorn, both databases."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import text

from riskops.db import make_engine
from riskops.risks.matrices.service import BUILTIN_MATRICES
from tests.helpers import risk_body, running_service

RISKOPS = [sys.executable, "-m", "riskops"]


def _run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RISKOPS_DATABASE_URL": url}
    return subprocess.run([*RISKOPS, *args], env=env, capture_output=True, text=True, timeout=120)


def test_apikey_create_prints_the_secret_alone_on_the_last_line(empty_database_url: str) -> None:
    result = _run(empty_database_url, "apikey", "create", "--name", "erin", "--role", "write")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("rko_") and " " not in secret
    listing = _run(empty_database_url, "apikey", "list")
    assert "erin" in listing.stdout and secret not in listing.stdout
    engine = make_engine(empty_database_url)
    with engine.connect() as conn:
        hashes = conn.execute(text("SELECT key_hash FROM api_key")).scalars().all()
    engine.dispose()
    assert secret not in hashes and len(hashes) == 1


def test_apikey_create_refuses_an_unknown_role(empty_database_url: str) -> None:
    result = _run(empty_database_url, "apikey", "create", "--name", "x", "--role", "root")
    assert result.returncode != 0 and "root" in result.stderr


def test_serve_migrates_starts_and_answers(empty_database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with running_service(empty_database_url, log) as base:
        first_key = next(line.strip() for line in log.read_text().splitlines() if line.strip().startswith("rko_"))
        headers = {"Authorization": f"Bearer {first_key}"}
        created = httpx.post(f"{base}/api/v1/risks", json=risk_body(), headers=headers, timeout=10)
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}/api/v1/risks/R-0001", headers=headers).json()["level"] == "medium"
        assert httpx.get(f"{base}/api/v1/risks").status_code == 401
        assert httpx.get(f"{base}/docs").status_code == 200
    with running_service(empty_database_url, log):
        assert "rko_" not in log.read_text(), "a second start must not print a new key"


def test_matrix_publish_from_yaml(empty_database_url: str, tmp_path: Path) -> None:
    result = _run(empty_database_url, "matrix", "publish", str(BUILTIN_MATRICES["nist-sp800-30"]))
    assert result.returncode == 0, result.stderr
    assert "version 2" in result.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(BUILTIN_MATRICES["default"].read_text().replace("appetite: medium", "appetite: extreme"))
    result = _run(empty_database_url, "matrix", "publish", str(broken))
    assert result.returncode == 1 and "appetite" in result.stderr and "broken.yaml" in result.stderr


def test_a_bad_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    env = {**os.environ, "RISKOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    env["RISKOPS_WEBHOOK_ALLOWED_NETWORKS"] = "10.0.0.0/8,localhost:8099"  # a name with a port: not an address
    result = subprocess.run([*RISKOPS, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: settings: RISKOPS_WEBHOOK_ALLOWED_NETWORKS")
    assert "'localhost:8099' is neither a network" in result.stderr and "Traceback" not in result.stderr


def test_export_names_the_formats_it_knows(tmp_path: Path) -> None:
    env = {**os.environ, "RISKOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    run = [*RISKOPS, "export", "--cycle", "2026Q3", "--format", "docx"]
    result = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and list(tmp_path.iterdir()) == []
    assert result.stderr == "error: unsupported format 'docx': use json, csv, xlsx or pdf\n"

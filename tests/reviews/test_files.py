"""A closed cycle's files: `riskops export` and the HTTP export choose the format, and find the previous quarter
that movements start from, in one place, so they give the same file."""

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from riskops.reviews import exports, files
from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body


def _risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _cli_export(database_url: str, cycle: str, file_format: str, target: Path) -> bytes:
    env = {**os.environ, "RISKOPS_DATABASE_URL": database_url}
    run = [sys.executable, "-m", "riskops", "export", "--cycle", cycle, "--format", file_format, "-o", str(target)]
    result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return target.read_bytes()


def _sheets(body: bytes) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet's cell values: a workbook's bytes also hold the moment it was written."""
    book = load_workbook(io.BytesIO(body))
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def test_the_cli_and_the_api_export_the_same_files(
    client: TestClient, keys: Keys, database_url: str, frozen_clock: FrozenClock, tmp_path: Path
) -> None:
    admin = keys.headers("admin")
    rising = _risk(client, title="Goes up", residual=None)
    _risk(client, title="Stays", residual=None)
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin)
    frozen_clock.advance(timedelta(days=93))  # 2026-10-02, in Q4
    q3 = client.post("/api/v1/reviews/2026Q3/close", headers=admin).json()
    client.post("/api/v1/reviews", json={"cycle": "2026Q4"}, headers=admin)
    client.post(
        f"/api/v1/risks/{rising['id']}/assessments",
        json={"inherent": {"likelihood": 5, "impact": 5}, "rationale": "new supplier"},
    )
    added = _risk(client, title="New this quarter")
    frozen_clock.advance(timedelta(days=92))  # 2027-01-02
    assert client.post("/api/v1/reviews/2026Q4/close", headers=admin).status_code == 200

    for file_format in files.FORMATS:
        answer = client.get("/api/v1/reviews/2026Q4/export", params={"format": file_format})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == files.MEDIA_TYPES[file_format]
        written = _cli_export(database_url, "2026Q4", file_format, tmp_path / f"review.{file_format}")
        if file_format == "xlsx":
            assert _sheets(written) == _sheets(answer.content)
        else:
            assert written == answer.content, file_format

    # Both start the movements from the previous quarter's snapshot, as the movements endpoint does.
    moves = client.get("/api/v1/reviews/2026Q4/movements").json()
    assert moves["from"] == q3["content"]["as_of"]
    assert moves["added"] == [added["reference"]] and [m["risk"] for m in moves["level_up"]] == [rising["reference"]]
    exported = _sheets(_cli_export(database_url, "2026Q4", "xlsx", tmp_path / "again.xlsx"))["Movements"][1:]
    assert [row[:2] for row in exported] == [row[:2] for row in exports.movement_rows(moves)]


def test_only_the_known_formats() -> None:
    assert files.FORMATS == tuple(files.MEDIA_TYPES) == ("json", "csv", "xlsx", "pdf")
    assert all(files.is_format(name) for name in files.FORMATS)
    assert not files.is_format("docx") and not files.is_format("JSON")

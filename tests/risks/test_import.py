"""Importing a spreadsheet register: row-by-row problems, all rows or none."""

import csv
import io
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import Engine

from tests.helpers import assert_problem, row_counts

HEADER = ["Title", "Description", "Category", "Owner", "Inherent_Likelihood", "Inherent_Impact",
          "Residual_Likelihood", "Residual_Impact", "Treatment", "Tags", "Acceptance_Approver",
          "Acceptance_Expires_At", "Next_Review_At"]  # fmt: skip
GOOD = [
    [
        "Payroll supplier fails",
        "Single payroll bureau",
        "supplier",
        "cfo",
        3,
        4,
        2,
        4,
        "transfer",
        "payroll; supplier",
        "",
        "",
        "",
    ],
    ["Laptop theft", "", "security", "ciso", 4, 2, "", "", "accept", "devices", "ciso", "2099-12-31", ""],
    ["Key person leaves", "Only one DBA", "people", "cto", 3, 3, "", "", "mitigate", "", "", "", "2027-02-01"],
]


def _csv(rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode()


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append([datetime.fromisoformat(v) if isinstance(v, str) and v.startswith("20") else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _upload(client: TestClient, name: str, content: bytes, dry_run: bool = False):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/risks/import", params={"dry_run": dry_run}, files={"file": (name, content)})


def test_csv_import_creates_every_row(client: TestClient) -> None:
    response = _upload(client, "register.csv", _csv(GOOD))
    assert response.status_code == 200, response.text
    assert response.json()["created"] == ["R-0001", "R-0002", "R-0003"]
    risks = {r["title"]: r for r in client.get("/api/v1/risks", params={"sort": "id"}).json()["items"]}
    assert risks["Payroll supplier fails"]["residual"]["level"] == "medium"
    assert risks["Payroll supplier fails"]["tags"] == ["payroll", "supplier"]
    assert risks["Laptop theft"]["acceptance"]["approver"] == "ciso"
    assert risks["Key person leaves"]["next_review_at"].startswith("2027-02-01")
    assert risks["Key person leaves"]["next_review_set_by_hand"] is True


def test_xlsx_import_reads_typed_cells(client: TestClient) -> None:
    response = _upload(client, "register.xlsx", _xlsx(GOOD))
    assert response.status_code == 200, response.text
    assert len(response.json()["created"]) == 3
    levels = sorted(r["level"] for r in client.get("/api/v1/risks").json()["items"])
    assert levels == ["medium", "medium", "medium"]


def test_dry_run_reports_every_bad_row_and_writes_nothing(client: TestClient, engine: Engine) -> None:
    bad = [
        GOOD[0],
        ["", "no title", "ops", "cto", 3, 3, "", "", "mitigate", "", "", "", ""],
        ["Too likely", "", "ops", "cto", 7, 3, "", "", "mitigate", "", "", "", ""],
        ["Wrong treatment", "", "ops", "cto", 2, 2, "", "", "ignore", "", "", "", ""],
        ["Accept without approver", "", "ops", "cto", 1, 1, "", "", "accept", "", "", "", ""],
    ]
    before = row_counts(engine)
    for name, content in (("r.csv", _csv(bad)), ("r.xlsx", _xlsx(bad))):
        report = _upload(client, name, content, dry_run=True)
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["dry_run"] and body["rows"] == 5 and body["created"] == []
        found = {(e["row"], e["column"]) for e in body["errors"]}
        assert found == {(3, "title"), (4, "inherent_likelihood"), (5, "treatment"), (6, "acceptance")}, body["errors"]
    assert row_counts(engine) == before
    real = _upload(client, "r.csv", _csv(bad))
    problem = assert_problem(real, 422)
    assert {(e["row"], e["column"]) for e in problem["errors"]} == found
    assert row_counts(engine) == before, "a failed import writes no row at all"


def test_header_problems_and_unreadable_files(client: TestClient) -> None:
    wrong = b"title,category,owner,inherent_likelihood,colour\nx,y,z,1,red\n"
    problem = assert_problem(_upload(client, "r.csv", wrong), 422)
    assert {(e["row"], e["column"], e["message"]) for e in problem["errors"]} == {
        (1, "colour", "unknown column"), (1, "inherent_impact", "required column missing"),
    }  # fmt: skip
    assert_problem(_upload(client, "r.xlsx", b"not a workbook"), 400)
    assert_problem(_upload(client, "r.txt", b"title\n"), 400)
    assert_problem(_upload(client, "r.csv", b""), 400)
    assert_problem(_upload(client, "r.csv", "title\n".encode("utf-16")), 400)


def test_cli_import(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_bytes(_csv(GOOD))
    env = {**os.environ, "RISKOPS_DATABASE_URL": database_url}
    run = [sys.executable, "-m", "riskops", "import", str(path)]
    dry = subprocess.run([*run, "--dry-run"], env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "would import 3" in dry.stdout, dry.stderr
    real = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert real.returncode == 0 and "imported 3" in real.stdout, real.stderr
    path.write_bytes(_csv([["", "", "ops", "cto", 3, 3, "", "", "", "", "", "", ""]]))
    bad = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "row 2, column title" in bad.stderr

"""GET /api/v1/risks/export and `riskops export --live`: the live register as CSV, XLSX or JSON, with the risk
list's filters, streamed in keyset batches, on both databases."""

import codecs
import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine

from riskops.db import Database
from riskops.risks import export
from riskops.risks.export import CSV_COLUMNS
from riskops.risks.queries import RiskFilter
from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body

EXPORT = "/api/v1/risks/export"


@pytest.fixture
def register(client: TestClient) -> list[dict[str, Any]]:
    """Five risks in three scripts, levels high to low; one closed, one with controls, one accepted."""
    bodies = [
        risk_body(title="数据中心停电", owner="Infra", inherent={"likelihood": 5, "impact": 5}, residual=None),
        risk_body(title="Διακοπή ρεύματος", owner="infra", tags=["power", "dc"]),
        risk_body(title="Отказ поставщика", category="supply", inherent={"likelihood": 2, "impact": 2}, residual=None),
        risk_body(
            title="=HYPERLINK(\"x\")", owner="-finance", treatment="accept", residual=None,
            inherent={"likelihood": 1, "impact": 3},
            acceptance={"approver": "cfo@example.com", "expires_at": "2027-03-31T00:00:00Z"},
        ),
        risk_body(title="Legacy mainframe", inherent={"likelihood": 4, "impact": 4}, residual=None),
    ]  # fmt: skip
    created = []
    for body in bodies:
        answer = client.post("/api/v1/risks", json=body)
        assert answer.status_code == 201, answer.text
        created.append(answer.json())
    control = {"title": "UPS", "owner": "infra", "status": "implemented"}
    assert client.post(f"/api/v1/risks/{created[1]['reference']}/controls", json=control).status_code == 201
    closing = {"reason": "Decommissioned"}
    assert client.post(f"/api/v1/risks/{created[4]['reference']}/close", json=closing).status_code == 200
    return created


def _listed(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """The risk list's answer for the same filters, every page, by id."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get("/api/v1/risks", params={**params, "sort": "id", "limit": 2, "cursor": cursor}).json()
        items += page["items"]
        if (cursor := page["next_cursor"]) is None:
            return items


def _csv(body: bytes) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]


def test_csv_has_the_review_columns_a_bom_and_every_risk(
    client: TestClient, keys: Keys, register: list[dict[str, Any]]
) -> None:
    answer = client.get(EXPORT, headers=keys.headers("read"))  # csv by default, for the read role too
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="riskops-register.csv"'
    assert answer.content.startswith(codecs.BOM_UTF8) and answer.content.count(codecs.BOM_UTF8) == 1
    rows = _csv(answer.content)
    assert [r["reference"] for r in rows] == [r["reference"] for r in register]  # reference order, closed ones too
    first, second, accepted, closed = rows[0], rows[1], rows[3], rows[4]
    assert (first["title"], first["level"], first["score"]) == ("数据中心停电", "critical", "25")
    assert first["residual_score"] == ""
    assert (second["tags"], second["controls"], second["controls_implemented"]) == ("dc;power", "1", "1")
    assert accepted["title"] == '\'=HYPERLINK("x")' and accepted["owner"] == "'-finance"  # never a formula
    assert accepted["acceptance_approver"] == "cfo@example.com" and accepted["acceptance_expired"] == "false"
    assert closed["status"] == "closed" and closed["closed_at"]
    assert first["review_in_cycle"] == ""  # a live register is in no cycle

    plain = client.get(EXPORT, params={"format": "csv", "bom": "false"})
    assert plain.status_code == 200 and not plain.content.startswith(codecs.BOM_UTF8)
    assert plain.content == answer.content[len(codecs.BOM_UTF8) :]


def test_json_is_the_risks_as_the_list_shows_them(client: TestClient, register: list[dict[str, Any]]) -> None:
    answer = client.get(EXPORT, params={"format": "json"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == _listed(client)
    filtered = client.get(EXPORT, params={"format": "json", "owner": "INFRA", "status": "open"}).json()
    assert [r["reference"] for r in filtered] == [register[0]["reference"], register[1]["reference"]]
    assert client.get(EXPORT, params={"format": "json", "q": "no such risk"}).json() == []


def test_xlsx_is_the_register_sheet(client: TestClient, register: list[dict[str, Any]]) -> None:
    answer = client.get(EXPORT, params={"format": "xlsx", "status": "open"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == export.MEDIA_TYPES["xlsx"]
    book = load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == ["Register"]
    rows = list(book["Register"].iter_rows(values_only=True))
    assert rows[0] == CSV_COLUMNS
    by_ref = {row[0]: dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert list(by_ref) == [r["reference"] for r in register[:4]]  # the closed one filtered out
    first = by_ref[register[0]["reference"]]
    assert first["title"] == "数据中心停电" and first["score"] == 25 and first["overdue"] is False
    assert by_ref[register[3]["reference"]]["title"] == '=HYPERLINK("x")'  # text, never a formula


@pytest.mark.parametrize(
    "params",
    [
        {"level": ["critical", "high"]},
        {"status": "closed"},
        {"owner": "infra"},
        {"category": "SUPPLY"},
        {"tag": "power"},
        {"treatment": "accept"},
        {"q": "ρεύμα"},
        {"overdue": "false", "status": "open"},
    ],
)
def test_the_filters_are_the_lists(client: TestClient, register: list[dict[str, Any]], params: dict[str, Any]) -> None:
    exported = _csv(client.get(EXPORT, params=params).content)
    expected = [r["reference"] for r in _listed(client, **params)]
    assert [r["reference"] for r in exported] == expected
    assert 0 < len(expected) < len(register)


def test_batches_walk_the_whole_register_by_keyset(engine: Engine, client: TestClient) -> None:
    for n in range(7):
        client.post("/api/v1/risks", json=risk_body(title=f"Risk {n}", owner="batch" if n % 2 else "other"))
    db = Database(engine)
    everything = [r["reference"] for r in export.risks(db, RiskFilter(), batch=3)]
    assert everything == [f"R-{n:04d}" for n in range(1, 8)]
    owned = export.risks(db, RiskFilter(owner=["BATCH"]), batch=2)  # any case, as the list matches owners
    assert [r["reference"] for r in owned] == ["R-0002", "R-0004", "R-0006"]
    assert list(export.risks(db, RiskFilter(status=["closed"]), batch=2)) == []


def test_roles_and_bad_parameters(client: TestClient, keys: Keys, register: list[dict[str, Any]]) -> None:
    assert_problem(client.get(EXPORT, headers={"Authorization": "Bearer nope"}), 401)
    body = assert_problem(client.get(EXPORT, params={"level": "extreme"}), 422, "query.level")
    assert "critical" in body["detail"]  # the allowed values are named
    assert_problem(client.get(EXPORT, params={"format": "pdf"}), 422, "query.format")
    assert_problem(client.get(EXPORT, params={"q": "ab"}), 422, "query.q")
    assert_problem(client.get(EXPORT, params={"bom": "perhaps"}), 422, "query.bom")
    assert_problem(client.get(EXPORT, params={"limit": "5"}), 422, "query.limit")  # not a page: the whole register
    assert_problem(client.get(EXPORT, params={"status": "archived"}), 422, "query.status")


def test_the_openapi_document_describes_the_export(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/risks/export"]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == set(export.MEDIA_TYPES.values())
    assert content["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/RiskPublic"}
    assert {"401", "403", "422"} <= set(operation["responses"])
    names = {p["name"] for p in operation["parameters"]}
    assert names == {
        "status", "level", "treatment", "category", "owner", "tag", "overdue", "outside_appetite", "beyond_tolerance",
        "q", "format", "bom",
    }  # fmt: skip


def test_the_csv_goes_back_through_the_import(client: TestClient, register: list[dict[str, Any]]) -> None:
    exported = client.get(EXPORT, params={"status": "open"}).content
    files = {"file": ("register.csv", exported, "text/csv")}
    checked = client.post("/api/v1/risks/import", params={"dry_run": "true"}, files=files)
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert (report["rows"], report["error_count"]) == (4, 0), report["errors"]


# ---- the command line ----


def _riskops(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RISKOPS_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "riskops", "export", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_writes_what_the_api_answers(
    client: TestClient, database_url: str, register: list[dict[str, Any]], tmp_path: Path
) -> None:
    for file_format, extra in (("csv", ["--level", "critical", "--level", "high"]), ("json", ["--owner", "infra"])):
        target = tmp_path / f"register.{file_format}"
        done = _riskops(database_url, "--live", "--format", file_format, *extra, "-o", str(target))
        assert done.returncode == 0, done.stderr
        params: dict[str, Any] = {"format": file_format, extra[0].lstrip("-"): extra[1::2]}
        assert target.read_bytes() == client.get(EXPORT, params=params).content
    no_bom = tmp_path / "plain.csv"
    assert _riskops(database_url, "--live", "--format", "csv", "--no-bom", "-o", str(no_bom)).returncode == 0
    assert no_bom.read_bytes() == client.get(EXPORT, params={"bom": "false"}).content


def test_the_cli_refuses_what_the_api_refuses(database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    bad_level = _riskops(database_url, "--live", "--format", "csv", "--level", "extreme", "-o", str(target))
    assert bad_level.returncode == 1 and bad_level.stderr.startswith("error: --level: unknown level 'extreme'")
    short = _riskops(database_url, "--live", "--format", "csv", "--q", "ab", "-o", str(target))
    assert short.returncode == 1 and short.stderr.startswith("error: --q: String should have at least 3 characters")
    pdf = _riskops(database_url, "--live", "--format", "pdf", "-o", str(target))
    assert pdf.stderr == "error: unsupported format 'pdf' for --live: use csv, xlsx or json\n"
    both = _riskops(database_url, "--live", "--cycle", "2026Q3")
    assert both.returncode == 1 and "--cycle CYCLE" in both.stderr
    mixed = _riskops(database_url, "--cycle", "2026Q3", "--owner", "infra")
    assert mixed.stderr == "error: --owner filters the live register: use it with --live\n"
    assert not target.exists()

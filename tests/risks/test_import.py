"""Importing a spreadsheet register: row-by-row problems, all rows or none."""

import csv
import io
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import Engine, Table, select

from riskops.audit.models import AuditEntry
from riskops.config import Settings
from riskops.db import Database, table_of
from riskops.errors import Conflict
from riskops.events.models import Delivery, Event
from riskops.notices.models import Notice
from riskops.risks import import_rows, importer, service
from riskops.risks.matching import Register
from riskops.risks.matrices import service as matrices
from riskops.risks.models import Risk, RiskAssessment, RiskTag, reference
from tests.conftest import ADMIN, FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.webhooks.support import subscribe

# An acceptance lasts at most RISKOPS_ACCEPTANCE_MAX_DAYS (365 by default) from now: half a year from today.
ACCEPTED_UNTIL = (datetime.now(UTC) + timedelta(days=180)).date().isoformat()
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
    ["Laptop theft", "", "security", "ciso", 4, 2, "", "", "accept", "devices", "ciso", ACCEPTED_UNTIL, ""],
    ["Key person leaves", "Only one DBA", "people", "cto", 3, 3, "", "", "mitigate", "", "", "", "2027-02-01"],
]


def _csv(rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode()


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its one sheet
    sheet.append(HEADER)
    for row in rows:
        sheet.append([datetime.fromisoformat(v) if isinstance(v, str) and v.startswith("20") else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _upload(
    client: TestClient, name: str, content: bytes, dry_run: bool = False, mapping: str | None = None, **options: str
) -> httpx.Response:
    """The import over HTTP; `options` are its query parameters, `mapping` its form field."""
    response: httpx.Response = client.post(
        "/api/v1/risks/import", params={"dry_run": dry_run, **options}, files={"file": (name, content)},
        data={"mapping": mapping} if mapping is not None else None,
    )  # fmt: skip
    return response


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
        (1, "inherent_impact", "required column missing"),
    }  # fmt: skip
    assert problem["ignored"] == ["colour"]  # a column that fills no field is left out, not refused
    assert_problem(_upload(client, "r.xlsx", b"not a workbook"), 422, "body.file")
    assert_problem(_upload(client, "r.txt", b"title\n"), 422, "body.file")
    assert_problem(_upload(client, "r.csv", b""), 422, "body.file")


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


def test_an_imported_risk_is_written_as_post_writes_it(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    """The import inserts in bulk, apart from create_risk: the same rows must come of it (history, event,
    deliveries, notices), on both paths, for the same risk."""
    subscribe(client, keys, "http://127.0.0.1:9/hook", ["risk.*"])
    until = (frozen_clock.now + timedelta(days=180)).isoformat()
    for extra in ({}, {"next_review_at": "2027-02-01T00:00:00Z"}):
        body = {
            "title": "Payroll supplier fails", "description": "Single bureau", "category": "supplier",
            "owner": "CFO", "inherent": {"likelihood": 3, "impact": 4}, "residual": {"likelihood": 1, "impact": 2},
            "treatment": "accept", "tags": ["supplier", "payroll"],
            "acceptance": {"approver": "ciso", "expires_at": until}, **extra,
        }  # fmt: skip
        posted = client.post("/api/v1/risks", json=body)
        assert posted.status_code == 201, posted.text
        row = ["Payroll supplier fails", "Single bureau", "supplier", "CFO", 3, 4, 1, 2, "accept",
               "supplier; payroll", "ciso", until, extra.get("next_review_at", "")]  # fmt: skip
        imported = _upload(client, "r.csv", _csv([row]), on_duplicate="create")  # the same risk, on purpose
        assert imported.status_code == 200, imported.text
        (reference,) = imported.json()["created"]
        assert _written(engine, service.parse_risk_ref(reference)) == _written(engine, posted.json()["id"])


def _written(engine: Engine, risk_id: int) -> dict[str, Any]:
    """Every row written for a risk, without the ids that differ from one risk to another."""
    ref = reference(risk_id)
    with engine.connect() as conn:

        def rows(table: Table, *where: Any, drop: tuple[str, ...] = ("id",)) -> list[dict[str, Any]]:
            found = conn.execute(select(table).where(*where).order_by(table.c.id if "id" in table.c else None))
            return [{k: v for k, v in r._mapping.items() if k not in drop} for r in found]

        risk, tag, assessment = table_of(Risk), table_of(RiskTag), table_of(RiskAssessment)
        audit, event, notice = table_of(AuditEntry), table_of(Event), table_of(Notice)
        delivery = table_of(Delivery)
        events = rows(event, event.c.subject_id == ref, drop=("id", "subject_id"))
        for e in events:
            e["data"] = {k: v for k, v in e["data"].items() if k not in ("id", "reference")}
        event_ids = [r.id for r in conn.execute(select(event.c.id).where(event.c.subject_id == ref))]
        return {
            "risk": rows(risk, risk.c.id == risk_id),
            "tags": [r.tag for r in conn.execute(select(tag.c.tag).where(tag.c.risk_id == risk_id))],
            "assessment": rows(assessment, assessment.c.risk_id == risk_id, drop=("id", "risk_id")),
            "history": rows(audit, audit.c.entity_type == "risk", audit.c.entity_id == str(risk_id),
                            drop=("id", "entity_id")),
            "events": events,
            "deliveries": len(list(conn.execute(select(delivery.c.id).where(delivery.c.event_id.in_(event_ids))))),
            "notices": sorted(
                (n["kind"], n["ref"], n["due_at"], str(n["data"]))
                for n in rows(notice, notice.c.subject_type == "risk", notice.c.subject_id == risk_id)
            ),
        }  # fmt: skip


def test_control_characters_and_bad_bytes_are_row_problems_never_stored(client: TestClient, engine: Engine) -> None:
    rows = [
        GOOD[0],
        ["Nul\x00in the title", "", "ops", "cto", 3, 3, "", "", "", "", "", "", ""],
        ["Escape", "colour \x1b[31m", "ops", "cto", 3, 3, "", "", "", "", "", "", ""],
        ["Tabs\tand\r\nbreaks are text", "", "ops", "cto", 3, 3, "", "", "", "", "", "", ""],
    ]
    # Not UTF-8, so read as Windows-1252, where 0x81 is no character.
    content = _csv(rows) + b"Latin-1,,ops,caf\xe9\x81,3,3,,,,,,,\r\n"
    before = row_counts(engine)
    report = _upload(client, "r.csv", content, dry_run=True).json()
    found = {(e["row"], e["column"]): e["message"] for e in report["errors"]}
    assert set(found) == {(3, "title"), (4, "description"), (6, "owner")}, report
    assert "U+0000" in found[(3, "title")] and "U+001B" in found[(4, "description")]
    assert "no character in the file's encoding" in found[(6, "owner")] and "0x81" in found[(6, "owner")]
    problem = assert_problem(_upload(client, "r.csv", content), 422)
    assert {(e["row"], e["column"]) for e in problem["errors"]} == set(found)
    deleted = ["DEL in the category", "", "ops\x7f", "cto", 1, 1] + [""] * 7
    xlsx = assert_problem(_upload(client, "r.xlsx", _xlsx([GOOD[0], deleted])), 422)
    assert [(e["row"], e["column"]) for e in xlsx["errors"]] == [(3, "category")]
    assert row_counts(engine) == before, "nothing of a refused file is written"


def test_the_problem_list_is_capped_and_every_problem_counted(client: TestClient, engine: Engine) -> None:
    bad = [[f"Risk {n}", "", "ops", "cto", 9, 3, "", "", "", "", "", "", ""] for n in range(1500)]
    report = _upload(client, "r.csv", _csv(bad), dry_run=True).json()
    assert (report["rows"], report["error_count"], len(report["errors"])) == (1500, 1500, import_rows.MAX_ERRORS)
    assert report["errors"][-1]["row"] == 1001  # the first thousand, in file order
    problem = assert_problem(_upload(client, "r.csv", _csv(bad)), 422)
    assert problem["error_count"] == 1500 and len(problem["errors"]) == 1000 and "first 1000" in problem["detail"]
    assert row_counts(engine)["risk"] == 0


def test_a_matrix_published_while_the_file_was_checked_refuses_the_write(engine: Engine) -> None:
    """Rows are scored before the write transaction; the write finds another matrix current: 409, nothing written."""
    db, settings = Database(engine), Settings()
    with db.read() as session:
        matrix = matrices.current(session)
    register = Register(db)
    checked = importer.check_file(
        "r.csv", io.BytesIO(_csv(GOOD)), matrix.version, matrix.parsed(), ADMIN, settings, register
    )
    assert len(checked.risks) == 3
    with db.write() as session:
        matrices.publish(session, matrix.parsed(), actor="alice")
    before = row_counts(engine)
    with pytest.raises(Conflict, match="version 2"), db.write() as session:
        service.create_checked(session, matrix.version, checked.spec, checked.risks, ADMIN, settings)
    assert row_counts(engine) == before


def raw_xlsx(sheet: bytes, strings: bytes | None = None, styles: bytes | None = None, date1904: bool = False) -> bytes:
    """A minimal workbook from its parts' XML, the way spreadsheet programs other than openpyxl write them."""
    main = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {"xl/worksheets/sheet1.xml": (sheet, "worksheet")}
    if strings is not None:
        parts["xl/sharedStrings.xml"] = (strings, "sharedStrings")
    if styles is not None:
        parts["xl/styles.xml"] = (styles, "styles")
    links = "".join(
        f'<Relationship Id="rId{n}" Type="{rel}/{kind}" Target="/{path}"/>' for n, (path, (_, kind)) in enumerate(
            parts.items(), start=1)
    )  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr(
            "[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
        )
        book.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{rel[:-41]}package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        book.writestr(
            "xl/workbook.xml",
            f'<x:workbook {main.replace("xmlns", "xmlns:x")} xmlns:r="{rel}">'
            f'<x:workbookPr date1904="{int(date1904)}"/><x:sheets><x:sheet name="Register" sheetId="1" '
            'r:id="rId1"/></x:sheets></x:workbook>',
        )
        book.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{rel[:-41]}package/2006/relationships">{links}</Relationships>',
        )
        for path, (content, _) in parts.items():
            book.writestr(path, content)
    return out.getvalue()  # fmt: skip


def test_xlsx_cells_of_every_kind(client: TestClient) -> None:
    strings = (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>title</t></si>'
        b"<si><r><t>Data centre </t></r><r><rPr><b/></rPr><t>flooded</t></r><rPh><t>furigana</t></rPh></si></sst>"
    )
    styles = (
        b'<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1">'
        b'<numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts><cellXfs count="3"><xf numFmtId="0"/>'
        b'<xf numFmtId="164"/><xf numFmtId="22"/></cellXfs></styleSheet>'
    )
    header = ["title", "category", "owner", "inherent_likelihood", "inherent_impact", "tags", "next_review_at"]
    cells = "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(header))
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/>'
        f'<sheetData><row r="1">{cells}</row>'
        '<row r="3"><c r="A3" t="s"><v>1</v></c><c r="B3" t="str"><f>LOWER("OPS")</f><v>ops</v></c>'
        '<c r="C3" t="inlineStr"><is><t>cto</t></is></c><c r="D3"><v>3</v></c><c r="E3"><v>4.0</v></c>'
        '<c r="F3" t="b"><v>1</v></c><c r="G3" s="1"><v>46054</v></c><c r="XFD3"><v>9</v></c></row>'
        "<row><c><v>1</v></c></row></sheetData></worksheet>"
    ).encode()  # fmt: skip
    response = _upload(client, "r.xlsx", raw_xlsx(sheet, strings, styles), dry_run=True)
    report = response.json()
    assert report["rows"] == 2 and {e["row"] for e in report["errors"]} == {4}  # A4 only: no category, no owner
    response = _upload(client, "r.xlsx", raw_xlsx(sheet.replace(b"<row><c><v>1</v></c></row>", b""), strings, styles))
    assert response.status_code == 200, response.text
    risk = client.get(f"/api/v1/risks/{response.json()['created'][0]}").json()
    assert (risk["title"], risk["category"], risk["owner"], risk["score"]) == ("Data centre flooded", "ops", "cto", 12)
    assert risk["tags"] == ["true"] and risk["next_review_at"] == "2026-02-01T00:00:00Z"  # a date: from the day's start


def test_damaged_or_hostile_workbooks_are_refused_whole(client: TestClient) -> None:
    ok = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>'
    for sheet in (
        b'<!DOCTYPE lol [<!ENTITY lol "lol">]>' + ok,  # no document types, no entities
        ok.replace(b"<sheetData/>", b'<sheetData><row r="1048577"><c><v>1</v></c></row></sheetData>'),
        ok.replace(b"<sheetData/>", b'<sheetData><row><c r="XFE1"><v>1</v></c></row></sheetData>'),
        ok.replace(b"<sheetData/>", b'<sheetData><row><c t="s"><v>7</v></c></row></sheetData>'),
        ok[:-5],
    ):
        assert "not a readable XLSX" in assert_problem(_upload(client, "r.xlsx", raw_xlsx(sheet)), 422)["detail"]
    assert_problem(_upload(client, "r.xlsx", raw_xlsx(ok)), 422)  # no rows: nothing names the columns

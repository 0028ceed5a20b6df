"""Snapshot exports (CSV, JSON, XLSX, PDF) and SVG heat maps, from a snapshot content built by hand: no database."""

import copy
import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from pypdf import PdfReader

from riskops.reviews import exports, heatmap, pdf, xlsx
from riskops.reviews.movements import MOVEMENT_KINDS, movements
from riskops.reviews.snapshots import canonical, content_hash
from riskops.risks.matrices import service as matrices

AS_OF = "2026-09-30T23:59:59+00:00"
SVG = "{http://www.w3.org/2000/svg}"
INJECTION = "=cmd|' /C calc'!A0"


def rating(likelihood: int, impact: int, level: str) -> dict[str, Any]:
    return {"likelihood": likelihood, "impact": impact, "score": likelihood * impact, "level": level}


def risk(
    risk_id: int,
    title: str,
    inherent: dict[str, Any],
    residual: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    current = residual or inherent
    record: dict[str, Any] = {
        "id": risk_id, "reference": f"R-{risk_id:04d}", "title": title, "category": "operational",
        "owner": "ops@example.com", "status": "open", "treatment": "mitigate", "tags": [], "matrix_version": 1,
        "inherent": inherent, "residual": residual, "score": current["score"], "level": current["level"],
        "acceptance": None, "controls": [], "last_reviewed_at": "2026-07-15T09:00:00+00:00",
        "next_review_at": "2026-10-13T09:00:00+00:00", "overdue": False, "closed_at": None,
        "materialised_at": None, "review_in_cycle": None,
    }  # fmt: skip
    record.update(fields)
    return record


def snapshot_content() -> dict[str, Any]:
    spec = matrices.load_spec_file(matrices.DEFAULT_MATRIX).model_dump()
    register = [
        risk(
            1, INJECTION, rating(4, 4, "high"), rating(3, 3, "medium"), tags=["it", "fraud"],
            controls=[
                {"id": 1, "title": "MFA", "owner": "it", "status": "implemented", "due_date": None},
                {"id": 2, "title": "Egress filter", "owner": "it", "status": "planned", "due_date": "2026-12-01"},
            ],
        ),
        risk(2, "Legacy data centre", rating(5, 5, "critical"), status="closed", closed_at="2026-08-01T10:00:00+00:00"),
        risk(
            3, "Vendor lock-in", rating(2, 3, "medium"), treatment="accept",
            acceptance={"approver": "cfo@example.com", "expires_at": "2026-09-01T00:00:00+00:00", "expired": True},
        ),
        risk(
            4, "Ransomware", rating(5, 5, "critical"), rating(4, 4, "high"), overdue=True,
            next_review_at="2026-09-01T09:00:00+00:00", review_in_cycle="reviewed",
        ),
        risk(5, "Office flood", rating(1, 1, "low"), owner="-facilities"),
        risk(6, 'Supplier, "sole source"\nlogistics', rating(4, 4, "high"), rating(2, 2, "low"), category="@supply"),
        risk(7, "Payment outage", rating(3, 5, "high"), materialised_at="2026-08-20T12:00:00+00:00"),
    ]  # fmt: skip
    open_risks = [r for r in register if r["status"] == "open"]
    return {
        "as_of": AS_OF,
        "cycle": "2026Q3",
        "period_start": "2026-07-01T00:00:00+00:00",
        "matrix": {"version": 1, **spec},
        "summary": {
            "risks": len(register),
            "open": len(open_risks),
            "by_level": dict(sorted(Counter(r["level"] for r in open_risks).items())),
            "overdue": sum(r["overdue"] for r in open_risks),
            "reviewed_in_cycle": 1,
            "incidents": 2,
            "rto_missed": 1,
        },
        "risks": register,
        "incidents": [
            {
                "reference": "INC-2026-0001", "title": "Card payments down", "severity": "sev1", "exercise": False,
                "playbook": "payments", "declared_at": "2026-08-20T12:00:00+00:00",
                "resolved_at": "2026-08-20T15:30:00+00:00", "rto_met": True, "breached": False,
                "objectives_met": None, "risks": ["R-0007"],
            },
            {
                "reference": "INC-2026-0002", "title": "Flood drill", "severity": "sev3", "exercise": True,
                "playbook": None, "declared_at": "2026-09-10T09:00:00+00:00", "resolved_at": None, "rto_met": None,
                "breached": False, "objectives_met": True, "risks": ["R-0005"],
            },
            {
                "reference": "INC-2026-0003", "title": "Power lost in the comms room", "severity": "sev2",
                "exercise": False, "playbook": "core-service-outage", "declared_at": "2026-09-29T09:00:00+00:00",
                "resolved_at": None, "rto_met": False, "breached": True, "objectives_met": None, "risks": [],
            },
        ],
    }  # fmt: skip


@pytest.fixture
def content() -> dict[str, Any]:
    return snapshot_content()


@pytest.fixture
def moves(content: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(content)
    old["as_of"] = "2026-06-30T23:59:59+00:00"
    old["risks"] = [r for r in old["risks"] if r["id"] != 7]
    for r in old["risks"]:
        if r["id"] == 2:
            r["status"] = "open"
        if r["id"] == 4:
            r["score"], r["level"] = 25, "critical"
    return movements(old, content)


def column(name: str) -> int:
    return exports.CSV_COLUMNS.index(name)


# ---- heat map grid ----


def test_grid_counts_open_risks_only(content: dict[str, Any]) -> None:
    inherent = heatmap.grid(content, "inherent")
    assert len(inherent) == 5 and all(len(row) == 5 for row in inherent)
    assert sum(map(sum, inherent)) == 6  # the closed R-0002 is left out
    assert inherent[3][3] == 2 and inherent[4][4] == 1 and inherent[0][0] == 1
    residual = heatmap.grid(content, "residual")
    assert sum(map(sum, residual)) == 3  # only R-0001, R-0004 and R-0006 have a residual rating
    assert residual[2][2] == residual[3][3] == residual[1][1] == 1


# ---- CSV ----


def test_csv_round_trips_with_a_stable_header(content: dict[str, Any]) -> None:
    lines = list(exports.csv_lines(content))
    assert all(line.endswith("\r\n") for line in lines)
    rows = list(csv.reader(io.StringIO("".join(lines), newline="")))
    assert tuple(rows[0]) == exports.CSV_COLUMNS
    assert len(rows) == len(content["risks"]) + 1
    by_ref = {row[0]: dict(zip(exports.CSV_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert by_ref["R-0006"]["title"] == 'Supplier, "sole source"\nlogistics'
    assert by_ref["R-0001"]["tags"] == "it;fraud"
    assert by_ref["R-0001"]["controls"] == "2" and by_ref["R-0001"]["controls_implemented"] == "1"
    assert by_ref["R-0003"]["residual_score"] == "" and by_ref["R-0003"]["acceptance_expired"] == "true"
    assert by_ref["R-0004"]["overdue"] == "true" and by_ref["R-0005"]["overdue"] == "false"


def test_csv_neutralises_formula_injection(content: dict[str, Any]) -> None:
    rows = list(csv.reader(io.StringIO("".join(exports.csv_lines(content)), newline="")))
    by_ref = {row[0]: row for row in rows[1:]}
    assert by_ref["R-0001"][column("title")] == "'" + INJECTION
    assert by_ref["R-0005"][column("owner")] == "'-facilities"
    assert by_ref["R-0006"][column("category")] == "'@supply"
    for text in ("+1", "\tx", "\rx"):
        assert exports.neutralise(text) == "'" + text
    assert exports.neutralise("plain = fine") == "plain = fine"


def test_csv_numbers_stay_numbers(content: dict[str, Any]) -> None:
    line = list(exports.csv_lines(content))[1]  # R-0001: inherent 4x4=16, residual 3x3=9
    fields = next(csv.reader([line]))
    assert fields[column("inherent_score")] == "16" and fields[column("score")] == "9"
    assert ",16," in line and '"16"' not in line  # unquoted
    negative = {**content, "risks": [{**content["risks"][0], "score": -3}]}
    row = list(exports.csv_lines(negative))[1]
    assert next(csv.reader([row]))[column("score")] == "-3"  # a number, not text to defuse


# ---- JSON ----


def test_json_is_canonical_with_the_hash(content: dict[str, Any]) -> None:
    digest = content_hash(content)
    body = exports.to_json(content, digest)
    document = json.loads(body)
    assert document == {"hash": digest, "snapshot": content}
    assert body == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert content_hash(document["snapshot"]) == digest


def test_the_hash_and_the_json_export_share_one_canonical_form(content: dict[str, Any]) -> None:
    assert canonical({"b": [1, 2], "a": "é <&>"}) == '{"a":"é <&>","b":[1,2]}'.encode()
    digest = content_hash(content)
    assert digest == hashlib.sha256(canonical(content)).hexdigest()
    assert exports.to_json(content, digest) == canonical({"hash": digest, "snapshot": content})


# ---- movements ----


def test_every_format_lists_the_movement_kinds_in_one_order(content: dict[str, Any], moves: dict[str, Any]) -> None:
    assert list(moves) == ["from", "to", *MOVEMENT_KINDS] and len(set(MOVEMENT_KINDS)) == len(MOVEMENT_KINDS)
    listed = [kind for kind in MOVEMENT_KINDS if moves[kind]]
    assert len(listed) > 5
    book = load_workbook(io.BytesIO(xlsx.render(content, content_hash(content), moves)))
    kinds = [row[0] for row in book["Movements"].iter_rows(min_row=2, values_only=True)]
    assert list(dict.fromkeys(kinds)) == listed
    report = PdfReader(io.BytesIO(pdf.render(content, content_hash(content), moves)))
    text = "".join(page.extract_text() for page in report.pages)
    cells = text.split("Movement\nCount\n")[1].split("\n")[: 2 * len(MOVEMENT_KINDS)]  # one cell a line
    counts = list(zip(cells[::2], cells[1::2], strict=True))
    assert counts == [(kind.replace("_", " "), str(len(moves[kind]))) for kind in MOVEMENT_KINDS]


# ---- XLSX ----


def test_xlsx_register_is_typed(content: dict[str, Any], moves: dict[str, Any]) -> None:
    digest = content_hash(content)
    book = load_workbook(io.BytesIO(xlsx.render(content, digest, moves)))
    assert book.sheetnames == [
        "Register", "Movements", "Heat map inherent", "Heat map residual", "Incidents", "Methodology",
    ]  # fmt: skip
    sheet = book["Register"]
    assert sheet.max_row == len(content["risks"]) + 1
    assert tuple(c.value for c in sheet[1]) == exports.CSV_COLUMNS
    first = {name: cell for name, cell in zip(exports.CSV_COLUMNS, sheet[2], strict=True)}
    assert first["reference"].value == "R-0001"
    assert first["score"].value == 9 and isinstance(first["score"].value, int)
    assert first["last_reviewed_at"].value == datetime(2026, 7, 15, 9, 0)
    assert first["overdue"].value is False
    assert first["title"].value == INJECTION and first["title"].data_type == "s"  # text, never a formula
    assert sheet.freeze_panes == "A2"
    last = get_column_letter(len(exports.CSV_COLUMNS))
    assert sheet.auto_filter.ref == f"A1:{last}{len(content['risks']) + 1}"

    movements = [tuple(row) for row in book["Movements"].iter_rows(min_row=2, values_only=True)]
    assert ("added", "R-0007", None, None, None) in movements
    assert ("closed", "R-0002", None, None, None) in movements
    assert ("level_down", "R-0004", "critical", "high", None) in movements
    assert any(row[0] == "materialised" and row[1] == "R-0007" and "INC-2026-0001" in str(row[4]) for row in movements)
    # An incident linked to no risk is no risk materialising: listed apart.
    assert [row[4] for row in movements if row[0] == "materialised"] == ["INC-2026-0001: Card payments down"]
    assert [row[4] for row in movements if row[0] == "incidents_without_risks"] == [
        "INC-2026-0003: Power lost in the comms room"
    ]

    sheet = book["Incidents"]
    header = [c.value for c in sheet[1]]
    assert header == list(xlsx.INCIDENT_COLUMNS)
    rows = [dict(zip(header, row, strict=False)) for row in sheet.iter_rows(min_row=2, max_row=4, values_only=True)]
    assert [row["reference"] for row in rows] == ["INC-2026-0001", "INC-2026-0002", "INC-2026-0003"]
    assert rows[0]["declared_at"] == datetime(2026, 8, 20, 12, 0)
    assert (rows[0]["rto_met"], rows[0]["breached"]) == ("yes", "no")
    assert (rows[1]["rto_met"], rows[1]["exercise"]) == (None, "yes")  # undecided stays empty
    assert (rows[2]["rto_met"], rows[2]["breached"]) == ("no", "yes")
    assert sheet.auto_filter.ref == "A1:K4"  # the figures below the table are not filtered away
    figures = {row[0]: row[1] for row in sheet.iter_rows(min_row=5, values_only=True) if row[0]}
    assert figures == {"Incidents in period (not exercises)": 2, "RTO missed": 1}


def test_xlsx_and_pdf_of_a_snapshot_older_than_the_rto_count(content: dict[str, Any]) -> None:
    """Frozen snapshots taken before `rto_missed` existed export without inventing it."""
    old = copy.deepcopy(content)
    for key in ("incidents", "rto_missed"):
        del old["summary"][key]
    for incident in old["incidents"]:
        del incident["breached"]
    digest = content_hash(old)
    book = load_workbook(io.BytesIO(xlsx.render(old, digest, movements(None, old))))
    assert [row[0] for row in book["Incidents"].iter_rows(min_row=2, values_only=True)] == [
        "INC-2026-0001", "INC-2026-0002", "INC-2026-0003",
    ]  # fmt: skip
    text = PdfReader(io.BytesIO(pdf.render(old, digest, movements(None, old)))).pages[0].extract_text()
    assert "RTO missed" not in text and "Open risks" in text


def test_xlsx_heat_maps_and_methodology(content: dict[str, Any], moves: dict[str, Any]) -> None:
    digest = content_hash(content)
    book = load_workbook(io.BytesIO(xlsx.render(content, digest, moves)))
    colors = {lv["name"]: lv["color"] for lv in content["matrix"]["levels"]}
    for view in ("inherent", "residual"):
        sheet = book[f"Heat map {view}"]
        expected = heatmap.grid(content, view)
        for row in range(2, 7):  # likelihood 5 at the top
            likelihood = 7 - row
            assert str(sheet.cell(row, 1).value).startswith(str(likelihood))
            for impact in range(1, 6):
                cell = sheet.cell(row, impact + 1)
                assert cell.value == expected[likelihood - 1][impact - 1]
                level = content["matrix"]["cells"][likelihood - 1][impact - 1]
                assert cell.fill.fgColor.rgb == "FF" + colors[level].lstrip("#").upper()
    critical = book["Heat map inherent"].cell(2, 6)  # likelihood 5, impact 5
    assert critical.value == 1 and critical.fill.fgColor.rgb == "FFC62828"

    values = [c for row in book["Methodology"].iter_rows(values_only=True) for c in row if c is not None]
    assert digest in values
    assert datetime(2026, 9, 30, 23, 59, 59) in values
    assert "Default 5x5" in values and "medium" in values and 365 in values


# ---- PDF ----


def test_pdf_has_the_hash_on_every_page(content: dict[str, Any], moves: dict[str, Any]) -> None:
    many = copy.deepcopy(content)  # enough incidents to run over several pages
    many["incidents"] = [
        {**content["incidents"][0], "reference": f"INC-2026-{n:04d}", "title": f"Outage {n} <b>&amp;"}
        for n in range(1, 120)
    ]
    digest = content_hash(many)
    report = PdfReader(io.BytesIO(pdf.render(many, digest, movements(None, many))))
    assert len(report.pages) > 2
    texts = [page.extract_text() for page in report.pages]
    assert all(digest in text for text in texts)
    assert "Outage 7 <b>&amp;" in "".join(texts)  # escaped, not markup


def test_pdf_report_contents(content: dict[str, Any], moves: dict[str, Any]) -> None:
    digest = content_hash(content)
    report = PdfReader(io.BytesIO(pdf.render(content, digest, moves)))
    first = report.pages[0].extract_text()
    assert "2026Q3" in first and "30 Sep 2026 23:59 UTC" in first  # AS_OF, for people
    assert re.search(rf"Open risks\s*{content['summary']['open']}\b", first)
    assert re.search(rf"Risks in register\s*{content['summary']['risks']}\b", first)
    assert first.index("Open at level high") < first.index("Open at level medium") < first.index("Open at level low")
    assert re.search(r"RTO missed\s*1\b", first)
    assert re.search(r"Incidents in period \(not exercises\)\s*2\b", first)
    text = "".join(page.extract_text() for page in report.pages)
    assert all(digest in page.extract_text() for page in report.pages)
    for expected in ("Heat map: inherent", "Heat map: residual", "Top 10 open risks", "Ransomware", "INC-2026-0001"):
        assert expected in text
    assert "Legacy data centre" not in text.split("Top 10 open risks")[1].split("Movements")[0]  # closed
    assert re.search(r"materialised\s*1\b", text) and re.search(r"incidents without risks\s*1\b", text)
    # RTO met: "no" for the breached incident still open (no resolved date between), "-" for the undecided drill.
    breached = text.split("INC-2026-0003")[-1].split("\n")
    assert breached[breached.index("29 Sep 2026 09:00 UTC") + 1] == "no"
    drill = text.split("INC-2026-0002")[-1].split("\n")
    assert drill[drill.index("10 Sep 2026 09:00 UTC") + 1] == "-"


# ---- SVG ----


def test_svg_heat_map(content: dict[str, Any]) -> None:
    for view in ("inherent", "residual"):
        document = heatmap.svg(content, view, f"2026Q3 {view} <&>")
        root = ET.fromstring(document)
        assert root.tag == f"{SVG}svg"
        cells = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "cell"]
        assert len(cells) == 25
        counts = [int(t.text or "") for t in root.iter(f"{SVG}text") if t.get("class") == "count"]
        expected = heatmap.grid(content, view)
        assert sorted(counts) == sorted(n for row in expected for n in row)
        texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
        assert "Almost certain" in texts and "Severe" in texts and f"2026Q3 {view} <&>" in texts
        top_right = next(r for r in cells if r.get("data-likelihood") == "5" and r.get("data-impact") == "5")
        assert top_right.get("fill") == "#c62828"


def test_svg_without_a_matrix_is_still_valid() -> None:
    empty: dict[str, Any] = {"as_of": AS_OF, "cycle": None, "matrix": None, "risks": [], "incidents": []}
    root = ET.fromstring(heatmap.svg(empty, "inherent", "register now"))
    assert [r for r in root.iter(f"{SVG}rect") if r.get("class") == "cell"] == []

"""The XLSX workbook as a file: user text is never a formula nor markup, and the layout (widths, frozen header,
filters, fills) is what a reader sees. Content built by hand, no database."""

import io
import re
import zipfile
from datetime import datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from riskops.reviews import exports, heatmap, xlsx
from riskops.reviews.movements import movements
from riskops.reviews.snapshots import content_hash
from tests.reviews.test_exports import rating, risk, snapshot_content

FORMULAS = ("=SUM(A1)", "@cmd", "+1+1", "-2+3", '=HYPERLINK("http://x","y")')
MARKUP = '<r><t>a</t></r></is></c><c r="Z1"><f>1+1</f></c><c><is><r><t>b</t></r>'


def _render(content: dict[str, Any]) -> bytes:
    return xlsx.render(content, content_hash(content), movements(None, content))


def _register(body: bytes) -> dict[str, dict[str, Any]]:
    sheet = load_workbook(io.BytesIO(body))["Register"]
    rows = sheet.iter_rows(min_row=2)
    return {str(row[0].value): dict(zip(exports.CSV_COLUMNS, row, strict=True)) for row in rows}


def _sheet_parts(body: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        return {name: archive.read(name).decode() for name in names}


@pytest.fixture
def content() -> dict[str, Any]:
    return snapshot_content()


def test_user_text_that_looks_like_a_formula_is_a_string(content: dict[str, Any]) -> None:
    content["risks"] = [
        risk(n, title, rating(2, 2, "low"), owner=title, category=title, tags=[title])
        for n, title in enumerate(FORMULAS, start=1)
    ]
    content["incidents"][0]["title"] = "=1+1"
    body = _render(content)
    register = _register(body)
    for n, text in enumerate(FORMULAS, start=1):
        cells = register[f"R-{n:04d}"]
        for column in ("title", "owner", "category", "tags"):
            assert (cells[column].value, cells[column].data_type) == (text, "s")
    incidents = load_workbook(io.BytesIO(body))["Incidents"]
    assert (incidents["B2"].value, incidents["B2"].data_type) == ("=1+1", "s")
    assert all("<f>" not in xml for xml in _sheet_parts(body).values())  # no formula anywhere in the workbook


def test_user_text_that_looks_like_cell_markup_is_text(content: dict[str, Any]) -> None:
    """XlsxWriter's constant_memory mode copies a string from "<r>" to "</r>" into the XML as it is."""
    content["risks"] = [risk(1, MARKUP, rating(2, 2, "low"), owner="<r>&</r>", category="<r></r>")]
    body = _render(content)
    cells = _register(body)["R-0001"]
    assert [cells[c].value for c in ("title", "owner", "category")] == [MARKUP, "<r>&</r>", "<r></r>"]
    assert all(cells[c].data_type == "s" for c in ("title", "owner", "category"))
    assert all("<f>" not in xml for xml in _sheet_parts(body).values())


def test_text_keeps_what_xml_can_carry(content: dict[str, Any]) -> None:
    content["risks"] = [
        risk(1, "tab\tand\nline", rating(2, 2, "low"), owner="a\r\nb\rc", category="bell\x07 \x00nul", tags=["\x01"])
    ]
    cells = _register(_render(content))["R-0001"]
    assert cells["title"].value == "tab\tand\nline"
    assert cells["owner"].value == "a\nb\nc"  # as an XML reader took the old workbook's carriage returns
    assert cells["category"].value == "bell nul"
    assert cells["tags"].value is None  # nothing left: no cell, as for no tags


def test_layout_widths_frozen_header_and_filters(content: dict[str, Any]) -> None:
    book = load_workbook(io.BytesIO(_render(content)))

    def widths(sheet: Worksheet) -> list[float]:
        found: dict[int, float] = {}
        for dimension in sheet.column_dimensions.values():
            assert dimension.min is not None and dimension.max is not None
            for col in range(dimension.min, dimension.max + 1):
                found[col] = dimension.width
        return [found[col] for col in sorted(found)]

    register = book["Register"]
    wide = {"reference": 10, "title": 40, "category": 16, "owner": 24, "status": 8, "statement_event": 40}
    assert widths(register) == [wide.get(column, 10) for column in exports.CSV_COLUMNS]
    assert widths(book["Movements"]) == [34, 20, 12, 12, 50]
    assert widths(book["Heat map inherent"]) == [24, 16, 16, 16, 16, 16]
    assert widths(book["Incidents"]) == [14, 40, 10, 10, 20, 20, 20, 10, 10, 14, 30]
    assert widths(book["Methodology"]) == [28, 70, 12]
    for name in ("Register", "Movements", "Incidents"):
        assert book[name].freeze_panes == "A2"
        assert all(cell.font.b for cell in book[name][1])
    assert book["Movements"].auto_filter.ref == f"A1:E{book['Movements'].max_row}"
    assert book["Heat map inherent"].freeze_panes is None and not book["Heat map inherent"].auto_filter.ref
    reviewed = register.cell(2, exports.CSV_COLUMNS.index("last_reviewed_at") + 1)
    assert reviewed.number_format == "yyyy-mm-dd hh:mm:ss" and reviewed.value == datetime(2026, 7, 15, 9)

    critical = book["Heat map inherent"]["F2"]  # likelihood 5, impact 5: white text on red
    assert (critical.fill.fill_type, critical.font.color.rgb) == ("solid", "FFFFFFFF")
    for row in book["Heat map residual"].iter_rows(min_row=2, max_row=6, min_col=2):
        for cell in row:  # black or white text, whichever reads on the level's colour
            text = heatmap.text_color("#" + cell.fill.fgColor.rgb[2:])
            assert cell.font.color.rgb == "FF" + text.lstrip("#").upper() and not cell.font.b
    assert {"FF000000", "FFFFFFFF"} <= {
        cell.font.color.rgb
        for row in book["Heat map residual"].iter_rows(min_row=2, max_row=6, min_col=2)
        for cell in row
    }
    levels = {row[0].value: row[2] for row in book["Methodology"].iter_rows() if row[0].value in ("low", "critical")}
    assert levels["critical"].value == "#c62828" and levels["critical"].fill.fgColor.rgb == "FFC62828"


def test_rows_are_written_one_at_a_time(content: dict[str, Any]) -> None:
    """constant_memory: strings inline in each row (no shared-string table held until the end)."""
    body = _render(content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert "xl/sharedStrings.xml" not in archive.namelist()
    register = _sheet_parts(body)["xl/worksheets/sheet1.xml"]
    assert len(re.findall(r"<row ", register)) == len(content["risks"]) + 1


def test_a_value_no_cell_can_hold_is_refused(content: dict[str, Any]) -> None:
    content["risks"][0]["title"] = {"not": "a cell"}
    with pytest.raises(TypeError, match="no XLSX cell for a dict"):
        _render(content)

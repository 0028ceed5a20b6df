"""Registers as spreadsheet programs save them: encodings, delimiters, the names registers give their columns,
dates in the file's own order, sheets of a workbook, and the service's own exports read back."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import Workbook

from riskops.reviews.exports import CSV_COLUMNS, FORMULA_PREFIXES, neutralise
from riskops.risks import cells, headers
from riskops.risks.models import Treatment
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body
from tests.risks.test_import import _upload

# Within the acceptance cap (RISKOPS_ACCEPTANCE_MAX_DAYS, 365 by default) from today.
ACCEPTED_UNTIL = datetime.now(UTC).date() + timedelta(days=180)


def _risks(client: TestClient) -> dict[str, dict[str, Any]]:
    """The register by title."""
    return {r["title"]: r for r in client.get("/api/v1/risks", params={"sort": "id", "limit": 500}).json()["items"]}


def _history_notes(client: TestClient, reference: str) -> list[str | None]:
    return [e["note"] for e in client.get(f"/api/v1/risks/{reference}/history").json()["items"]]


def test_excel_csv_utf8_with_bom_crlf_semicolons_day_first_and_the_registers_own_words(client: TestClient) -> None:
    lines = [
        "Risk;Risk Owner;Category;Likelihood;Impact;Treatment;Review Date;Colour",
        "Währung schwankt;Treasury;finance;3;4;Reduce;15/01/2027;red",
        '"Supplier; sole source";Procurement;supplier;2;5;Share;03/02/2027;',
    ]
    content = b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n"
    response = _upload(client, "register.csv", content)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["mapping"] == {
        "Risk": "title", "Risk Owner": "owner", "Category": "category", "Likelihood": "inherent_likelihood",
        "Impact": "inherent_impact", "Treatment": "treatment", "Review Date": "next_review_at",
    }  # fmt: skip
    assert report["ignored"] == ["Colour"] and report["date_format"] == "dmy"
    risks = _risks(client)
    currency, supplier = risks["Währung schwankt"], risks["Supplier; sole source"]
    assert (currency["owner"], currency["inherent"]["likelihood"], currency["inherent"]["impact"]) == ("Treasury", 3, 4)
    assert currency["treatment"] == "mitigate" and supplier["treatment"] == "transfer"
    assert currency["next_review_at"] == "2027-01-15T00:00:00Z" and supplier["next_review_at"] == "2027-02-03T00:00:00Z"
    assert "treatment given as 'Reduce'" in (_history_notes(client, currency["reference"])[0] or "")
    assert "treatment given as 'Share'" in (_history_notes(client, supplier["reference"])[0] or "")


def test_windows_1252_with_tabs_and_utf16_as_excel_saves_them(client: TestClient) -> None:
    rows = [["Title", "Owner", "Category", "L", "I"], ["Währung € risk", "Kämmerer", "finance", "2", "2"]]
    text = "\r\n".join("\t".join(row) for row in rows) + "\r\n"
    cp1252 = text.encode("cp1252")
    assert b"\xe4" in cp1252 and b"\x80" in cp1252  # not UTF-8: ä and € as Windows writes them
    response = _upload(client, "ansi.csv", cp1252)
    assert response.status_code == 200, response.text
    assert _risks(client)["Währung € risk"]["owner"] == "Kämmerer"

    unicode_text = text.replace("Währung € risk", "Übergabe 未定").encode("utf-16")  # Excel's "Unicode Text"
    assert unicode_text[:2] in (b"\xff\xfe", b"\xfe\xff")
    response = _upload(client, "unicode.csv", unicode_text)
    assert response.status_code == 200, response.text
    assert _risks(client)["Übergabe 未定"]["category"] == "finance"


def test_day_and_month_order_from_the_file_or_the_option(client: TestClient) -> None:
    def file(name: str, *dates: str) -> bytes:
        rows = [f"{name} {n},cto,ops,2,2,{day}" for n, day in enumerate(dates)]
        return "\n".join(["title,owner,category,likelihood,impact,next review", *rows]).encode()

    ambiguous = assert_problem(
        _upload(client, "r.csv", file("A", "03/04/2027"), dry_run=True), 422, "query.date_format"
    )
    assert "03/04/2027" in ambiguous["detail"] and "dmy" in ambiguous["detail"]
    for order, expected in (("dmy", "2027-04-03"), ("mdy", "2027-03-04")):
        response = _upload(client, "r.csv", file(order, "03/04/2027"), date_format=order)
        assert response.status_code == 200 and response.json()["date_format"] == order, response.text
        assert _risks(client)[f"{order} 0"]["next_review_at"] == f"{expected}T00:00:00Z"
    # A date that does not fit the order found is its row's problem, saying what was expected.
    mixed = _upload(client, "r.csv", file("B", "15/01/2027", "01/15/2027"), dry_run=True).json()
    assert [(e["row"], e["column"], e["value"]) for e in mixed["errors"]] == [(3, "next_review_at", "01/15/2027")]
    assert "DD/MM/YYYY" in mixed["errors"][0]["expected"]
    iso_only = _upload(client, "r.csv", file("C", "15/01/2027"), dry_run=True, date_format="iso").json()
    assert iso_only["errors"][0]["expected"].startswith("a date as YYYY-MM-DD")
    assert_problem(_upload(client, "r.csv", file("D", "2027-01-15"), date_format="ymd"), 422, "query.date_format")
    # A later day above 12 tells the order for the earlier rows too; ISO dates fit any order.
    later = _upload(client, "r.csv", file("E", "03/04/2027", "2027-05-01", "25/12/2027"))
    assert later.status_code == 200, later.text
    assert later.json()["date_format"] == "dmy"
    assert _risks(client)["E 0"]["next_review_at"] == "2027-04-03T00:00:00Z"


def _two_sheet_workbook() -> bytes:
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Read me"
    notes.append(["This register was kept by the risk committee."])
    register = book.create_sheet("Register 2027")
    register.append(["Risk title", "Owner", "Category", "Probability", "Severity", "Next review", "Acceptance expiry",
                     "Approver", "Response"])  # fmt: skip
    serial = (date(2027, 1, 15) - date(1899, 12, 30)).days  # the day as a number in a General cell
    register.append(["Flood", "facilities", "site", 2, 3, datetime(2027, 3, 31), None, None, "Avoid"])
    register.append(["Fraud", "cfo", "finance", 1, 2, serial, ACCEPTED_UNTIL, "board", "Tolerate"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_any_sheet_by_name_with_date_cells_and_serial_dates(client: TestClient) -> None:
    content = _two_sheet_workbook()
    first = assert_problem(_upload(client, "r.xlsx", content), 422)  # the first sheet holds notes
    assert {e["message"] for e in first["errors"]} == {"required column missing"}
    unknown = assert_problem(_upload(client, "r.xlsx", content, sheet="Register"), 422, "query.sheet")
    assert unknown["sheets"] == ["Read me", "Register 2027"] and "'Register 2027'" in unknown["detail"]
    response = _upload(client, "r.xlsx", content, sheet="Register 2027")
    assert response.status_code == 200, response.text
    risks = _risks(client)
    assert risks["Flood"]["next_review_at"] == "2027-03-31T00:00:00Z" and risks["Flood"]["treatment"] == "avoid"
    assert risks["Fraud"]["next_review_at"] == "2027-01-15T00:00:00Z"
    assert risks["Fraud"]["acceptance"]["expires_at"].startswith(f"{ACCEPTED_UNTIL}T23:59:59")  # through that day
    assert risks["Fraud"]["treatment"] == "accept"
    assert "treatment given as 'Tolerate'" in (_history_notes(client, risks["Fraud"]["reference"])[0] or "")


def test_an_explicit_mapping(client: TestClient) -> None:
    content = b"Hazard,Resp,Area,P,S,Notes\nRoof leak,estates,site,2,2,call the roofer\n"
    mapping = '{"Hazard": "title", "Resp": "owner", "Area": "category", "P": "inherent_likelihood", ' \
              '"S": "inherent_impact", "Notes": null}'  # fmt: skip
    report = _upload(client, "r.csv", content, dry_run=True, mapping=mapping).json()
    assert report["error_count"] == 0, report
    assert report["mapping"]["Hazard"] == "title" and report["ignored"] == ["Notes"]
    assert _upload(client, "r.csv", content, mapping=mapping).status_code == 200
    assert _risks(client)["Roof leak"]["owner"] == "estates"
    for bad in ('{"Hazard": "headline"}', "[1, 2]", "{not json", '{"Hazard": 7}'):
        problem = assert_problem(_upload(client, "r.csv", content, mapping=bad), 422, "body.mapping")
        assert problem["detail"].startswith("mapping:")
    absent = _upload(client, "r.csv", content, dry_run=True, mapping='{"Hazard": "title", "Cause": "description"}')
    assert any(e["row"] == 1 and e["value"] == "Cause" for e in absent.json()["errors"]), absent.text


def test_every_export_column_has_a_meaning_and_defused_text_reads_back() -> None:
    """A new export column is either a field the import fills or one it knowingly ignores."""
    assert {headers.key(c) for c in CSV_COLUMNS} <= {headers.key(c) for c in (*headers.FIELDS, *headers.EXPORT_ONLY)}
    assert all(cells.undo_neutralise(neutralise(p + "1")) == p + "1" for p in FORMULA_PREFIXES)
    assert cells.undo_neutralise("'=SUM(A1)") == "=SUM(A1)" and cells.undo_neutralise("'quoted'") == "'quoted'"


def test_the_services_own_exports_import_again(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> None:
    admin = keys.headers("admin")
    for body in (
        risk_body(title="=HYPERLINK(\"http://x\")", owner="-facilities"),
        risk_body(title="Payroll supplier fails", treatment="accept", residual=None,
                  inherent={"likelihood": 2, "impact": 2}, acceptance={"approver": "cfo", "expires_at": "2027-06-30"}),
    ):  # fmt: skip
        assert client.post("/api/v1/risks", json=body).status_code == 201
    assert client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin).status_code == 201
    assert client.post("/api/v1/reviews/2026Q3/close", headers=admin).status_code == 200
    exported = {
        fmt: client.get("/api/v1/reviews/2026Q3/export", params={"format": fmt}).content for fmt in ("csv", "xlsx")
    }
    before = client.get("/api/v1/risks").json()
    for fmt, content in exported.items():
        response = _upload(client, f"export.{fmt}", content)
        assert response.status_code == 200, (fmt, response.text)
        report = response.json()
        assert (report["unchanged"], report["updated"], report["created"]) == (["R-0001", "R-0002"], [], []), report
        assert "status" in report["ignored"] and report["mapping"]["reference"] == "reference"
    assert client.get("/api/v1/risks").json() == before, "reading the register back changes nothing"

    rows = list(csv.reader(io.StringIO(exported["csv"].decode())))
    assert rows[1][1].startswith("'=")  # the export defused the formula; the import reads the title as it was
    rows[2][rows[0].index("owner")] = "treasury"
    edited = io.StringIO()
    csv.writer(edited).writerows(rows)
    response = _upload(client, "export.csv", edited.getvalue().encode())
    assert response.status_code == 200, response.text
    assert response.json()["updated"] == ["R-0002"]
    assert client.get("/api/v1/risks/R-0002").json()["owner"] == "treasury"
    fresh = _upload(client, "export.csv", exported["csv"], dry_run=True, mapping='{"reference": null}').json()
    assert [(e["row"], e["message"]) for e in fresh["errors"]] == [
        (2, "probably a duplicate of R-0001: the same title and owner")  # R-0002 has another owner now
    ]


def test_how_cells_are_read() -> None:
    assert cells.date_formats_fitting("31/12/2027") == {"dmy"} and cells.date_formats_fitting("12/31/2027") == {"mdy"}
    assert (
        cells.date_formats_fitting("03.04.27") == {"dmy", "mdy"} and cells.date_formats_fitting("13/13/2027") == set()
    )
    assert cells.read_date("15/01/2027 09:30", "dmy") == datetime(2027, 1, 15, 9, 30, tzinfo=UTC)
    assert cells.read_date("1.2.27", "dmy") == date(2027, 2, 1) and cells.read_date("1.2.27", "mdy") == date(2027, 1, 2)
    assert cells.read_date("1.2.27", None) == "1.2.27"  # no order yet: left for the model to refuse
    assert cells.read_date(46402.25, "iso") == datetime(2027, 1, 15, 6, 0, tzinfo=UTC)  # a serial with a time
    assert cells.read_date(True, "dmy") is True and cells.read_date(-5, "dmy") == -5
    assert [cells.treatment(w) for w in ("Reduce", " SHARE ", "retain", "Tolerate", "ignore", 3)] == [
        Treatment.mitigate, Treatment.transfer, Treatment.accept, Treatment.accept, None, None,
    ]  # fmt: skip
    assert headers.key("Risk (owner)") == headers.key("risk_owner") == "riskowner"
    header = headers.read_header(["Risk", "Likelihood", "Inherent likelihood", None, "Notes"], {"Notes": None})
    assert header.mapping == {"Risk": "title", "Likelihood": "inherent_likelihood"} and header.ignored == ["Notes"]
    assert [(p.column, p.value) for p in header.problems][0] == ("inherent_likelihood", "Inherent likelihood")

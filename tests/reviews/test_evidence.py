"""A snapshot keeps the period's acceptances (who accepted what, until when, on whose approval) and control tests,
and the quarter's movements and the XLSX show them."""

import io
from datetime import date, timedelta

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlmodel import Session

from riskops.reviews import pdf, xlsx
from riskops.reviews.movements import movements
from riskops.reviews.snapshots import content_hash, register_as_of
from tests.conftest import FrozenClock, Keys
from tests.controls.test_library import control_body
from tests.helpers import risk_body


def test_the_period_s_acceptances_and_failed_controls_are_in_the_snapshot_its_movements_and_workbook(
    client: TestClient, keys: Keys, session: Session, frozen_clock: FrozenClock
) -> None:
    risk = client.post("/api/v1/risks", json=risk_body(inherent={"likelihood": 2, "impact": 2}, residual=None)).json()
    control = client.post("/api/v1/controls", json=control_body()).json()
    applied = client.post(f"/api/v1/risks/{risk['id']}/controls", json={"control_id": control["id"]})
    assert applied.status_code == 201, applied.text
    before = register_as_of(session, frozen_clock.now, None)
    session.rollback()

    frozen_clock.advance(timedelta(days=1))
    test = {"tested_on": frozen_clock.now.date().isoformat(), "tester": "internal audit", "result": "ineffective",
            "evidence_url": "https://evidence.example.org/q3.pdf"}  # fmt: skip
    assert client.post(f"/api/v1/controls/{control['reference']}/tests", json=test).status_code == 201
    expiry = (date(2026, 7, 2) + timedelta(days=90)).isoformat()
    request = {"risks": [risk["reference"]], "justification": "Cheap to live with", "expires_at": expiry}
    asked = client.post("/api/v1/acceptances", json=request)
    assert asked.status_code == 201, asked.text
    approved = client.post(f"/api/v1/acceptances/{asked.json()['reference']}/approve", json={"comment": "ok"},
                           headers=keys.headers("admin"))  # fmt: skip
    assert approved.status_code == 200, approved.text

    after = register_as_of(session, frozen_clock.now, None)
    [acceptance] = after["acceptances"]
    assert (acceptance["reference"], acceptance["status"], acceptance["risks"]) == (
        asked.json()["reference"], "approved", [risk["reference"]],
    )  # fmt: skip
    assert acceptance["approvers"] == ["admin-key"] and acceptance["requested_by"] == "write-key"
    assert acceptance["expires_at"].startswith(expiry)
    [tested] = after["control_tests"]
    assert (tested["control"], tested["result"], tested["risks"]) == (control["reference"], "ineffective",
                                                                       [risk["reference"]])  # fmt: skip
    assert after["summary"]["acceptances_in_force"] == 1 and after["summary"]["controls_found_ineffective"] == 1
    # The same snapshot taken of the day before knows neither.
    assert before["acceptances"] == [] and before["control_tests"] == []

    moved = movements(before, after)
    assert [t["control"] for t in moved["controls_found_ineffective"]] == [control["reference"]]
    assert [a["reference"] for a in moved["acceptances_approved"]] == [acceptance["reference"]]
    assert moved["acceptances_ended"] == [] and moved["acceptances_rejected"] == []

    book = load_workbook(io.BytesIO(xlsx.render(after, content_hash(after), moved)))
    rows = list(book["Acceptances"].iter_rows(values_only=True))
    assert rows[0][:5] == ("reference", "status", "risks", "requested_by", "approvers")
    assert rows[1][:5] == (acceptance["reference"], "approved", risk["reference"], "write-key", "admin-key")
    tests = list(book["Control tests"].iter_rows(values_only=True))
    assert tests[1][0] == control["reference"] and tests[1][4] == "ineffective"
    notes = [row for row in book["Movements"].iter_rows(values_only=True) if row[0] == "controls_found_ineffective"]
    assert notes and notes[0][1] == risk["reference"] and control["reference"] in str(notes[0][4])


def test_processes_whose_rto_no_playbook_meets_are_in_the_snapshot_workbook_and_report(
    client: TestClient, session: Session, frozen_clock: FrozenClock
) -> None:
    risk = client.post("/api/v1/risks", json=risk_body()).json()
    process = {"key": "payroll", "name": "Payroll", "owner": "hr", "criticality": "critical", "rto_minutes": "4h"}
    created = client.post("/api/v1/processes", json=process)
    assert created.status_code == 201, created.text
    assert client.post(f"/api/v1/risks/{risk['id']}/processes", json={"process": "payroll"}).status_code == 201
    content = register_as_of(session, frozen_clock.now, None)
    [payroll] = content["processes"]
    assert (payroll["key"], payroll["rto_minutes"], payroll["rto_met"], payroll["playbooks"]) == (
        "payroll", 240, False, [],
    )  # fmt: skip
    assert payroll["risks"] == [risk["reference"]]
    assert content["summary"]["processes_rto_not_met"] == [payroll["reference"]]
    book = load_workbook(io.BytesIO(xlsx.render(content, content_hash(content), movements(None, content))))
    rows = list(book["Processes"].iter_rows(values_only=True))
    assert rows[1][:3] == (payroll["reference"], "payroll", "Payroll") and rows[1][-1] == risk["reference"]
    report = PdfReader(io.BytesIO(pdf.render(content, content_hash(content), movements(None, content))))
    text = "".join(page.extract_text() for page in report.pages)
    section = text.split("Processes whose recovery time objective no playbook meets")[1]
    assert payroll["reference"] in section and risk["reference"] in section


def test_what_is_being_done_about_a_risk_outside_its_appetite_is_in_the_snapshot_and_report(
    client: TestClient, session: Session, frozen_clock: FrozenClock
) -> None:
    body = risk_body(inherent={"likelihood": 4, "impact": 4}, residual=None)
    risk = client.post("/api/v1/risks", json=body).json()
    for title, due in (("Barriers", "2026-06-30"), ("Pumps", "2026-09-30"), ("Drill", "2026-08-01")):
        action = {"title": title, "owner": "facilities", "due_date": due}
        assert client.post(f"/api/v1/risks/{risk['id']}/treatment-actions", json=action).status_code == 201
    content = register_as_of(session, frozen_clock.now, None)  # 2026-07-01: the barriers are late
    assert content["treatment_plans"] == [
        {"risk": risk["reference"], "open": 3, "overdue": 1, "done": 0, "next_due_date": "2026-06-30"}
    ]
    book = load_workbook(io.BytesIO(xlsx.render(content, content_hash(content), movements(None, content))))
    assert list(book["Treatment plans"].iter_rows(values_only=True))[1] == (risk["reference"], 3, 1, 0, "2026-06-30")
    report = PdfReader(io.BytesIO(pdf.render(content, content_hash(content), movements(None, content))))
    text = " ".join(page.extract_text() for page in report.pages).replace("\n", " ")
    assert "plan: 3 open (1 overdue)" in text

"""Incidents in a review's snapshot and exports: an RTO is missed as soon as its breach time passes unresolved,
and only an incident linked to risks counts as a risk that materialised."""

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader

from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body


def _activate(client: TestClient, playbook: str, **body: Any) -> str:
    response = client.post(f"/api/v1/playbooks/{playbook}/activate", json=body)
    assert response.status_code == 201, response.text
    reference: str = response.json()["reference"]
    return reference


def _resolve(client: TestClient, reference: str) -> None:
    for action, body in (("acknowledge", {"note": "on it"}), ("mitigate", {}), ("resolve", {})):
        response = client.post(f"/api/v1/incidents/{reference}/{action}", json=body)
        assert response.status_code == 200, response.text


def _note_ref(note: object) -> str:
    """The incident a movement's note is about ("INC-0001: title")."""
    assert isinstance(note, str), note
    return note.split(":")[0]


def test_breached_incidents_count_as_missed_rtos_in_the_snapshot_and_its_exports(
    client: TestClient, keys: Keys, playbooks: Path, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    risk = client.post("/api/v1/risks", json=risk_body(owner="ops")).json()
    client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin)
    # Declared at 09:00: two outages with a 2-hour RTO linked to the risk, one region loss (4 hours) linked to none.
    still_open = _activate(client, "core-service-outage", risk_ids=[risk["reference"]])
    late = _activate(client, "core-service-outage", risk_ids=[risk["reference"]])
    in_time = _activate(client, "cloud-region-loss")
    drill = client.post("/api/v1/incidents", json={"title": "Flood drill", "severity": "SEV4", "exercise": True})
    assert drill.status_code == 201, drill.text
    frozen_clock.advance(timedelta(minutes=30))
    _resolve(client, in_time)
    frozen_clock.advance(timedelta(hours=2, minutes=30))  # 12:00: both outages are past their breach time
    _resolve(client, late)
    frozen_clock.advance(timedelta(minutes=30))

    closed = client.post("/api/v1/reviews/2026Q3/close", headers=admin)
    assert closed.status_code == 200, closed.text
    content = closed.json()["content"]
    incidents = {i["reference"]: i for i in content["incidents"]}
    assert (incidents[still_open]["rto_met"], incidents[still_open]["breached"]) == (False, True)
    assert incidents[still_open]["resolved_at"] is None
    assert (incidents[late]["rto_met"], incidents[late]["breached"]) == (False, True)
    assert (incidents[in_time]["rto_met"], incidents[in_time]["breached"]) == (True, False)
    assert incidents[drill.json()["reference"]]["exercise"] is True
    assert content["summary"]["incidents"] == 3 and content["summary"]["rto_missed"] == 2
    exported = client.get("/api/v1/reviews/2026Q3/export", params={"format": "json"}).json()["snapshot"]
    assert exported["incidents"] == content["incidents"] and exported["summary"] == content["summary"]

    moves = client.get("/api/v1/reviews/2026Q3/movements").json()
    assert [i["reference"] for i in moves["materialised"]] == [still_open, late]
    assert [i["reference"] for i in moves["incidents_without_risks"]] == [in_time]
    assert [i["reference"] for i in moves["exercises"]] == [drill.json()["reference"]]

    xlsx = client.get("/api/v1/reviews/2026Q3/export", params={"format": "xlsx"})
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = list(book["Incidents"].iter_rows(values_only=True))
    header = sheet[0]
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in sheet[1:] if row[0] in incidents}
    assert (rows[still_open]["rto_met"], rows[still_open]["breached"]) == ("no", "yes")
    assert (rows[late]["rto_met"], rows[in_time]["rto_met"]) == ("no", "yes")
    assert ("RTO missed", 2) in [row[:2] for row in sheet]
    movements = [row for row in book["Movements"].iter_rows(min_row=2, values_only=True)]
    assert [_note_ref(row[4]) for row in movements if row[0] == "incidents_without_risks"] == [in_time]
    assert [_note_ref(row[4]) for row in movements if row[0] == "materialised"] == [still_open, late]

    pdf = client.get("/api/v1/reviews/2026Q3/export", params={"format": "pdf"})
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert re.search(r"RTO missed\s*2\b", text)
    assert re.search(r"materialised\s*2\b", text) and re.search(r"incidents without risks\s*1\b", text)
    row = text.split(still_open)[-1].split("\n")  # ref, title, severity, exercise, declared, (resolved), RTO met
    assert row[row.index("1 Jul 2026 09:00 UTC") + 1] == "no"  # declared, for people in RISKOPS_TIMEZONE

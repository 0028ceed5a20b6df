"""A snapshot keeps each KRI's status and newest value as they stood, and the period's transitions; the quarter's
movements list the KRIs turned red and recovered; the XLSX has a KRIs sheet and the PDF a short KRI section."""

import io
from datetime import timedelta

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlmodel import Session

from riskops.reviews import pdf, xlsx
from riskops.reviews.movements import movements
from riskops.reviews.snapshots import content_hash, register_as_of
from tests.conftest import FrozenClock
from tests.kris.helpers import add_kri, add_risk


def _push(client: TestClient, clock: FrozenClock, value: float, ref: str = "K-0001") -> None:
    body = {"values": [{"at": clock.now.isoformat(), "value": value}]}
    assert client.post(f"/api/v1/kris/{ref}/values", json=body).status_code == 200


def test_the_snapshot_keeps_kris_as_they_stood_and_the_quarter_s_movements_list_them(
    client: TestClient, session: Session, frozen_clock: FrozenClock
) -> None:
    risk = add_risk(client)
    add_kri(client, risks=[risk["reference"]])
    add_kri(client, name="Backup failures", unit="jobs", amber=1, red=3, risks=[risk["reference"]])
    _push(client, frozen_clock, 20)
    _push(client, frozen_clock, 5, ref="K-0002")
    before = register_as_of(session, frozen_clock.now, None)
    session.rollback()

    frozen_clock.advance(timedelta(days=10))
    _push(client, frozen_clock, 150)  # K-0001 turns red
    _push(client, frozen_clock, 0, ref="K-0002")  # K-0002 recovers
    after = register_as_of(session, frozen_clock.now, None)
    session.rollback()
    frozen_clock.advance(timedelta(days=1))
    _push(client, frozen_clock, 10)  # after the snapshot: it does not show there

    kept = {k["reference"]: k for k in after["kris"]}
    assert (kept["K-0001"]["status"], kept["K-0001"]["last_value"]) == ("red", 150)
    assert kept["K-0001"]["risks"] == [risk["reference"]] and kept["K-0002"]["status"] == "green"
    assert [k["status"] for k in before["kris"]] == ["green", "red"]
    assert [(t["kri"], t["from"], t["to"]) for t in after["kri_transitions"]] == [
        ("K-0001", None, "green"), ("K-0002", None, "red"), ("K-0001", "green", "red"), ("K-0002", "red", "green"),
    ]  # fmt: skip
    moved = movements(before, after)
    assert [(t["kri"], t["value"]) for t in moved["kris_turned_red"]] == [("K-0002", 5), ("K-0001", 150)]
    assert [t["kri"] for t in moved["kris_recovered"]] == ["K-0002"]

    book = load_workbook(io.BytesIO(xlsx.render(after, content_hash(after), moved)))
    rows = list(book["KRIs"].iter_rows(values_only=True))
    assert rows[0][:4] == ("reference", "name", "status", "last_value")
    assert rows[1][:4] == ("K-0001", "Failed logins per minute", "red", 150)
    noted = [row for row in book["Movements"].iter_rows(values_only=True) if row[0] == "kris_turned_red"]
    assert noted and noted[-1][1] == risk["reference"] and noted[-1][3] == "red" and "K-0001" in str(noted[-1][4])
    report = PdfReader(io.BytesIO(pdf.render(after, content_hash(after), moved)))
    text = "".join(page.extract_text() for page in report.pages)
    section = text.split("Key risk indicators in red or amber")[1]
    assert "K-0001" in section and "K-0002" not in section.split("Incidents")[0]


def test_a_snapshot_s_risks_carry_their_worst_kri_status_into_the_exports(
    client: TestClient, session: Session, frozen_clock: FrozenClock
) -> None:
    watched, unwatched = add_risk(client), add_risk(client, title="Unwatched")
    add_kri(client, risks=[watched["reference"]])
    add_kri(client, name="Backup failures", amber=1, red=3, risks=[watched["reference"]])
    _push(client, frozen_clock, 60)
    _push(client, frozen_clock, 0, ref="K-0002")
    content = register_as_of(session, frozen_clock.now, None)
    status = {r["reference"]: r["kri_status"] for r in content["risks"]}
    assert status == {watched["reference"]: "amber", unwatched["reference"]: None}
    book = load_workbook(io.BytesIO(xlsx.render(content, content_hash(content), movements(None, content))))
    rows = list(book["Register"].iter_rows(values_only=True))
    column = rows[0].index("kri_status")
    assert [row[column] for row in rows[1:]] == ["amber", None]

"""A review snapshot keeps the register's quantified loss as it stood (computed with a recorded seed from the
estimates then), and the XLSX's "Quantified loss" sheet and the PDF's page show it."""

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlmodel import Session

from riskops.reviews import pdf, xlsx
from riskops.reviews.movements import movements
from riskops.reviews.snapshots import content_hash, snapshot_content
from tests.conftest import FrozenClock, Keys
from tests.quant.helpers import estimate_body, quantified_risk
from tests.quant.test_analyses import RARE, STEADY, tolerance
from tests.treatments.helpers import new_risk


def test_a_register_with_no_estimate_has_no_quantified_loss(session: Session, frozen_clock: FrozenClock) -> None:
    content = snapshot_content(session, frozen_clock.now, None)
    assert content["quantified_loss"] is None
    book = load_workbook(io.BytesIO(xlsx.render(content, content_hash(content), movements(None, content))))
    first = list(book["Quantified loss"].iter_rows(values_only=True))[0][0]
    assert str(first).startswith("No risk had a loss estimate")


def test_the_snapshot_keeps_the_register_s_loss_and_its_exports_show_it(
    client: TestClient, keys: Keys, session: Session, frozen_clock: FrozenClock
) -> None:
    fraud = quantified_risk(client, STEADY, title="Card fraud")
    ransomware = quantified_risk(client, RARE, title="Ransomware")
    bare = new_risk(client, title="Supplier failure")
    tolerance(client, keys, (1_000_000.0, 0.01))
    content = snapshot_content(session, frozen_clock.now, None)
    loss = content["quantified_loss"]
    assert loss["currency"] == "EUR" and loss["trials"] == 10_000
    assert loss["seed"] == int(frozen_clock.now.timestamp() * 1_000_000)
    figures = loss["figures"]
    assert figures["risks"] == 2 and figures["not_quantified"][0]["risk"] == bare["reference"]
    assert figures["tolerance"]["within"] is False
    assert figures["tolerance"]["points"][0]["drivers"][0]["risk"] == ransomware["reference"]
    by_risk = {r["risk"]: r for r in loss["risks"]}
    assert set(by_risk) == {fraud["reference"], ransomware["reference"]}
    assert 9_000 < by_risk[fraud["reference"]]["p50"] < 11_000  # about 10 events of about 1,000
    # Each risk's figures are its own simulation's (the same trials and seed): their means add up to the aggregate's
    # within the Monte Carlo error of the rare risk's (its standard deviation is about 6 times its mean: 6/√10,000).
    assert sum(r["mean"] for r in loss["risks"]) == pytest.approx(figures["mean"], rel=0.25)
    # The same moment computes the same figures; a changed estimate shows in a later snapshot, not in this one.
    session.rollback()
    assert snapshot_content(session, frozen_clock.now, None)["quantified_loss"] == loss
    url = f"/api/v1/risks/{fraud['reference']}/loss-estimate"
    assert client.put(url, json=estimate_body()).status_code == 200
    session.rollback()
    assert snapshot_content(session, frozen_clock.now, None)["quantified_loss"]["figures"]["mean"] != figures["mean"]

    book = load_workbook(io.BytesIO(xlsx.render(content, content_hash(content), movements(None, content))))
    rows = list(book["Quantified loss"].iter_rows(values_only=True))
    assert rows[0][:2] == ("The open register's yearly loss", "in EUR")
    assert rows[1][0] == "Mean (ALE)" and rows[1][1] == pytest.approx(figures["mean"], rel=1e-14)  # 15 digits kept
    [point] = [r for r in rows if r[1] == 1_000_000]
    assert point[:5] == (None, 1_000_000, 0.01, figures["tolerance"]["points"][0]["simulated"], True)
    assert str(point[5]).split(";")[0] == ransomware["reference"]  # the risks that push it over, the heaviest first
    assert (bare["reference"], "Supplier failure", "no loss estimate") in [r[:3] for r in rows]
    fraud_row = [r for r in rows if r[0] == fraud["reference"]][-1]  # the per-risk table comes last
    assert fraud_row[1] == "Card fraud" and fraud_row[2] == pytest.approx(by_risk[fraud["reference"]]["mean"])

    report = PdfReader(io.BytesIO(pdf.render(content, content_hash(content), movements(None, content))))
    text = " ".join(page.extract_text() for page in report.pages).replace("\n", " ")
    assert "Quantified loss: what the register could cost in a year" in text
    assert "OVER the loss tolerance" in text and f"seed {loss['seed']}" in text
    assert f"{ransomware['reference']} Ransomware" in text.replace("  ", " ")

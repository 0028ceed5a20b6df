"""The PDF board report in any language: one embedded font for every script, text that extracts back as written,
glyphs on the page (poppler-utils renders it), dates for people in RISKOPS_TIMEZONE, the sections a meeting
needs, and bounded work for a register of 10,000 risks."""

import copy
import io
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from pypdf import PdfReader
from sqlalchemy import Engine

from riskops.app import create_app
from riskops.config import Settings
from riskops.reviews import pdf
from riskops.reviews.movements import movements
from riskops.reviews.snapshots import content_hash
from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body
from tests.reviews.test_exports import rating, risk, snapshot_content

TITLES = {
    "R-0001": "数据中心停电",  # Chinese
    "R-0004": "Διακοπή ρεύματος",  # Greek
    "R-0007": "Отказ электропитания",  # Cyrillic
    "R-0003": "東京オフィス浸水",  # Japanese
    "R-0006": "서버실 화재",  # Korean
}


@pytest.fixture
def content() -> dict[str, Any]:
    content = snapshot_content()
    for record in content["risks"]:
        record["title"] = TITLES.get(record["reference"], record["title"])
    return content


UTC = ZoneInfo("UTC")


def _render(content: dict[str, Any], zone: ZoneInfo = UTC) -> bytes:
    return pdf.render(content, content_hash(content), movements(None, content), zone)


def _text(body: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def test_every_font_is_embedded_and_every_script_extracts_back(content: dict[str, Any]) -> None:
    body = _render(content)
    reader = PdfReader(io.BytesIO(body))
    fonts: dict[str, Any] = {}
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for name, font in resources["/Font"].items():
            fonts[name] = font.get_object()
    assert fonts
    for name, font in fonts.items():
        # A standard font (Helvetica) has no descriptor, and knows Latin-1 alone.
        assert font["/Subtype"] == "/TrueType", (name, font["/BaseFont"])
        assert "/FontFile2" in font["/FontDescriptor"], (name, font["/BaseFont"])
        assert "/ToUnicode" in font, name  # what text extraction and copy-paste read
    lines = _text(body).split("\n")
    for title in TITLES.values():
        assert title in lines, title  # a table cell a line, exactly as written


def _poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is missing: install poppler-utils (apt-get install -y poppler-utils)", pytrace=False)
    return found


def _word_box(body: Path, page: int, word: str) -> tuple[float, float, float, float]:
    """Where poppler sets `word` on the page, in points from the top left."""
    xhtml = subprocess.run(
        [_poppler("pdftotext"), "-bbox", "-f", str(page), "-l", str(page), str(body), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next((line for line in xhtml.splitlines() if f">{word}</word>" in line), None)
    assert line is not None, f"{word} is not on page {page}"
    values = dict(part.split("=") for part in line.strip().removeprefix("<word ").split(">")[0].split())
    return tuple(float(values[k].strip('"')) for k in ("xMin", "yMin", "xMax", "yMax"))  # type: ignore[return-value]


def _ink(body: Path, page: int, box: tuple[float, float, float, float], dpi: int = 144) -> float:
    """The share of dark pixels in the box, as pdftoppm renders the page (a grey-scale PGM, read here)."""
    x0, y0, x1, y1 = (v * dpi / 72 for v in box)
    crop = ["-x", str(int(x0)), "-y", str(int(y0)), "-W", str(int(x1 - x0) + 1), "-H", str(int(y1 - y0) + 1)]
    command = [_poppler("pdftoppm"), "-gray", "-r", str(dpi), "-f", str(page), "-l", str(page), *crop, str(body)]
    image = subprocess.run(command, capture_output=True, check=True).stdout
    magic, width, height, _, pixels = image.split(maxsplit=4)
    assert magic == b"P5"
    pixels = pixels[: int(width) * int(height)]
    return sum(p < 128 for p in pixels) / len(pixels)


def test_the_titles_are_drawn_as_glyphs(content: dict[str, Any], tmp_path: Path) -> None:
    """Helvetica drew a Chinese title as solid boxes (about 77% ink) and extracted it as ■: a font that has the
    glyphs draws strokes, about a third of the box."""
    path = tmp_path / "report.pdf"
    path.write_bytes(_render(content))
    pages = PdfReader(path).pages
    for title in (TITLES["R-0001"], TITLES["R-0004"].split()[0], TITLES["R-0007"].split()[0]):
        page = next(n for n, p in enumerate(pages, start=1) if title in p.extract_text())
        ink = _ink(path, page, _word_box(path, page, title))
        assert 0.08 < ink < 0.5, (title, ink)


def test_dates_are_for_people_in_the_configured_zone(content: dict[str, Any]) -> None:
    content["incidents"][2]["breach_at"] = "2026-09-29T11:00:00+00:00"
    text = _text(_render(content, ZoneInfo("Europe/Paris"))).replace("\n", " ")
    assert "Register as of 1 Oct 2026 01:59 CEST (period from 1 Jul 2026 02:00 CEST)." in text
    assert "29 Sep 2026 11:00 CEST" in text and "29 Sep 2026 13:00 CEST" in text  # declared, recovery due
    assert "2026-09-29" not in text and "+00:00" not in text
    tokyo = _text(_render(content, ZoneInfo("Asia/Tokyo"))).replace("\n", " ")
    assert "Register as of 1 Oct 2026 08:59 JST" in tokyo
    assert pdf.when("2026-01-15T12:00:00+00:00", ZoneInfo("Europe/Paris")) == "15 Jan 2026 13:00 CET"
    assert pdf.when(None, ZoneInfo("UTC")) == ""


def test_the_sections_a_meeting_reads(content: dict[str, Any]) -> None:
    by_ref = {r["reference"]: r for r in content["risks"]}
    by_ref["R-0004"].update(review_in_cycle="proposed-closure", review_comment="Backups now offline & immutable")
    by_ref["R-0005"].update(review_in_cycle="proposed-closure")  # a snapshot frozen before comments were kept
    by_ref["R-0005"].pop("review_comment", None)
    by_ref["R-0007"].update(
        treatment="accept",
        acceptance={"approver": "cfo@example.com", "expires_at": "2026-12-31T00:00:00+00:00", "expired": False},
    )
    content["incidents"][2]["breach_at"] = "2026-09-29T11:00:00+00:00"
    text = _text(_render(content))
    appetite = text.split("Risks above their appetite (matrix appetite: medium)")[1].split("Proposed closures")[0]
    # Open risks above medium, highest score first; the closed critical one is not listed.
    assert [ref for ref in ("R-0004", "R-0007") if ref in appetite] == ["R-0004", "R-0007"]
    assert appetite.index("R-0004") < appetite.index("R-0007")
    assert "R-0002" not in appetite and "R-0001" not in appetite  # closed; residual medium is within appetite
    assert "cfo@example.com until 31 Dec 2026 00:00 UTC" in appetite.replace("\n", " ")
    closures = text.split("Proposed closures")[1].split("Movements")[0].replace("\n", " ")
    assert "R-0004" in closures and "Backups now offline & immutable" in closures
    assert "R-0005" in closures and "(not kept in this snapshot)" in closures
    assert "R-0001" not in closures
    missed = text.split("Missed recovery time objectives")[1].split("Incidents and exercises")[0]
    assert "INC-2026-0003" in missed and "INC-2026-0001" not in missed  # met its RTO
    assert "29 Sep 2026 11:00 UTC" in missed and "not yet" in missed
    moved = "".join(text.split("Movement\nRisk\nFrom\nTo\nNote\n")[1:])  # the table's header repeats on each page
    assert f"R-0001 {TITLES['R-0001']}" in moved and f"R-0004 {TITLES['R-0004']}" in moved
    assert "Open above the appetite\n2" in text and "Proposed for closure\n2" in text


def test_a_register_of_ten_thousand_risks_makes_a_short_report(content: dict[str, Any]) -> None:
    many = copy.deepcopy(content)
    many["risks"] = [
        risk(
            n, f"{TITLES['R-0001']} {n}", rating(5, 5, "critical"), review_in_cycle="proposed-closure",
            review_comment="Closed by the migration", overdue=True,
        )
        for n in range(1, 10_001)
    ]  # fmt: skip
    many["incidents"] = [
        {**content["incidents"][2], "reference": f"INC-2026-{n:04d}", "title": f"Outage {n}"} for n in range(1, 1001)
    ]
    body = _render(many)
    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) < 40 and len(body) < 1_500_000, (len(reader.pages), len(body))
    text = "".join(page.extract_text() for page in reader.pages)
    assert "And 9950 more: the XLSX export lists them all." in text  # above the appetite, and proposed closures
    assert "And 950 more" in text and "And 800 more" in text  # missed RTOs; incidents


# ---- from a closed cycle, over HTTP ----


def test_the_owner_comment_is_frozen_and_the_zone_comes_from_the_settings(
    engine: Engine, keys: Keys, frozen_clock: FrozenClock
) -> None:
    settings = Settings(scheduler_enabled=False, timezone=ZoneInfo("Asia/Tokyo"))
    with TestClient(create_app(settings, engine=engine), headers=keys.headers("write")) as client:
        created = client.post("/api/v1/risks", json=risk_body(title="上海仓库火灾")).json()
        admin = keys.headers("admin")
        assert client.post("/api/v1/reviews", json={"cycle": "2026Q3"}, headers=admin).status_code == 201
        review = {"outcome": "proposed-closure", "comment": "Склад закрыт: Ωmega site sold"}
        assert client.post(f"/api/v1/reviews/2026Q3/risks/{created['reference']}", json=review).status_code == 201
        frozen_clock.advance(timedelta(days=1))
        snapshot = client.post("/api/v1/reviews/2026Q3/close", headers=admin).json()
        record = snapshot["content"]["risks"][0]
        assert (record["review_in_cycle"], record["review_comment"]) == ("proposed-closure", review["comment"])
        answer = client.get("/api/v1/reviews/2026Q3/export", params={"format": "pdf"}, headers=keys.headers("read"))
    assert answer.status_code == 200, answer.text
    text = _text(answer.content)
    assert "Register as of 2 Jul 2026 18:00 JST" in text.replace("\n", " ")  # 09:00 UTC
    closures = text.split("Proposed closures")[1].split("Movements")[0]
    assert "上海仓库火灾" in closures and review["comment"] in closures.replace("\n", " ")


def test_without_a_matrix_the_appetite_is_not_judged(content: dict[str, Any]) -> None:
    content["matrix"] = None
    text = _text(_render(content))
    assert "The snapshot holds no risk matrix to judge them by." in text
    assert "Open above the appetite\n-" in text


def test_the_zone_is_an_iana_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKOPS_TIMEZONE", "Europe/Paris")
    assert Settings().timezone == ZoneInfo("Europe/Paris")
    assert Settings(_env_file=None).timezone.key == "Europe/Paris"
    monkeypatch.delenv("RISKOPS_TIMEZONE")
    assert Settings(_env_file=None).timezone == UTC
    for bad in ("Mars/Base", "../../etc/passwd", "CEST+2"):
        with pytest.raises(ValidationError) as refused:
            Settings(timezone=bad)
        assert [e["loc"] for e in refused.value.errors()] == [("timezone",)]

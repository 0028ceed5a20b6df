"""Rows against the register: every problem in one answer, rows that update the risk they name, and rows that
probably repeat a risk."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.db import Database
from riskops.errors import Conflict
from riskops.risks import importer, matching, service
from riskops.risks.matching import Register
from riskops.risks.matrices import service as matrices
from riskops.risks.models import RiskCreate, RiskUpdate
from tests.conftest import ADMIN, SETTINGS
from tests.helpers import assert_problem, risk_body, row_counts
from tests.risks.test_import import _upload


def _csv(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def _post(client: TestClient, **overrides: object) -> str:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    reference: str = response.json()["reference"]
    return reference


def test_the_header_and_every_row_are_reported_together_with_value_and_expected(
    client: TestClient, engine: Engine
) -> None:
    content = _csv(
        "Title,Risk title,Owner,Category,Likelihood,Treatment,Review date,Colour",
        "Good one,,cto,ops,3,mitigate,2027-01-15,red",
        "Bad likelihood,,cto,ops,high,mitigate,,",
        "Bad treatment,,cto,ops,2,ignore,,",
        "Bad date,,cto,ops,2,,2027-02-30,",
        ",,cto,ops,2,,,",
    )
    before = row_counts(engine)
    for dry_run in (True, False):
        response = _upload(client, "r.csv", content, dry_run=dry_run)
        body = response.json() if dry_run else assert_problem(response, 422)
        found = [(e["row"], e["column"], e["value"]) for e in body["errors"]]
        assert found == [
            (1, "title", "Risk title"),  # two columns would fill the title
            (1, "inherent_impact", None),  # said once for the file, not again for every row
            (3, "inherent_likelihood", "high"),
            (4, "treatment", "ignore"),
            (5, "next_review_at", "2027-02-30"),
            (6, "title", None),
        ], body["errors"]
        expected = {e["column"]: e["expected"] for e in body["errors"] if e["row"] > 1}
        assert expected["inherent_likelihood"] == "a whole number from 1 to 5"
        assert "reduce" in expected["treatment"] and "YYYY-MM-DD" in expected["next_review_at"]
        assert "'impact'" in body["errors"][1]["expected"]
        assert body["error_count"] == 6 and body["ignored"] == ["Colour"]
    assert row_counts(engine) == before


def test_a_row_with_a_reference_updates_that_risk_through_the_service(client: TestClient) -> None:
    flood, fraud = _post(client), _post(client, title="Card fraud", owner="cfo")
    closed = _post(client, title="Old office", owner="facilities")
    assert client.post(f"/api/v1/risks/{closed}/close", json={"reason": "moved"}).status_code == 200
    content = _csv(
        "Reference,Title,Owner,Category,L,I,Treatment",
        f"{flood},Primary data centre flooded,head of infrastructure,,4,5,Reduce",
        f"{fraud},,,,,,",
        ",New risk,ops,ops,2,2,",
    )
    report = _upload(client, "r.csv", content, dry_run=True).json()
    assert (report["updated"], report["unchanged"], report["error_count"]) == ([flood], [fraud], 0), report
    response = _upload(client, "r.csv", content)
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["updated"]) == (["R-0004"], [flood])
    risk = client.get(f"/api/v1/risks/{flood}").json()
    assert (risk["inherent"]["likelihood"], risk["inherent"]["impact"], risk["version"]) == (4, 5, 2)
    assert risk["residual"] == {
        "likelihood": 2,
        "impact": 4,
        "score": 8,
        "level": "medium",
        "impacts": None,
    }  # kept: not in the file
    assessment = client.get(f"/api/v1/risks/{flood}/assessments").json()["items"][0]
    assert assessment["kind"] == "reassessment" and "row 2" in assessment["rationale"]
    history = client.get(f"/api/v1/risks/{flood}/history").json()["items"]
    assert [e["action"] for e in history] == ["created", "assessed"]  # mitigate already: no edit
    assert history[1]["changes"]["inherent_likelihood"] == {"old": 3, "new": 4}
    assert history[1]["note"].endswith("row 2; treatment given as 'Reduce'")
    assert client.get(f"/api/v1/risks/{fraud}").json()["version"] == 1

    owners = _csv("Ref,Owner,Category", f"{flood},cto,", f"{fraud},cfo,")
    assert _upload(client, "r.csv", owners).json()["updated"] == [flood]  # only the owner: no required columns
    edit = client.get(f"/api/v1/risks/{flood}/history").json()["items"][-1]
    assert (edit["action"], edit["changes"]["owner"]) == ("updated", {"old": "head of infrastructure", "new": "cto"})

    entries = len(client.get(f"/api/v1/risks/{fraud}/history").json()["items"])
    shared = _upload(client, "r.csv", _csv("reference,treatment", f"{fraud},SHARE"))
    assert shared.json()["updated"] == [fraud], shared.text
    history = client.get(f"/api/v1/risks/{fraud}/history").json()["items"]
    assert len(history) == entries + 1  # one entry: the edit, with the word it was given as
    edited = history[-1]
    assert (edited["action"], edited["changes"]["treatment"]) == ("updated", {"old": "mitigate", "new": "transfer"})
    assert edited["note"] == "treatment given as 'SHARE'"  # the word as given, in the edit's own entry

    bad = _csv("reference,owner", "R-0099,x", f"{fraud},y", f"{fraud},z", f"{closed},new owner", "not-a-ref,x")
    errors = _upload(client, "r.csv", bad, dry_run=True).json()["errors"]
    assert [(e["row"], e["column"], e["value"]) for e in errors] == [
        (2, "reference", "R-0099"), (4, "reference", fraud), (5, "reference", closed), (6, "reference", "not-a-ref"),
    ], errors  # fmt: skip
    assert "no risk R-0099" in errors[0]["message"] and "closed" in errors[2]["message"]
    scale = _upload(client, "r.csv", _csv("reference,likelihood", f"{fraud},9"), dry_run=True).json()["errors"]
    assert [(e["column"], e["value"]) for e in scale] == [("inherent_likelihood", "9")]


def test_probable_duplicates_need_a_decision(client: TestClient, engine: Engine) -> None:
    payroll = _post(client, title="Payroll supplier fails", owner="CFO")
    content = _csv(
        "Title,Owner,Category,Likelihood,Impact",
        "payroll supplier FAILS ,cfo,supplier,3,3",  # the open risk, in other case and spacing
        "Laptop theft,ciso,security,2,2",
        "Laptop Theft,CISO,security,2,2",  # twice in the file
    )
    before = row_counts(engine)
    refused = assert_problem(_upload(client, "r.csv", content), 422)
    assert [(e["row"], e["message"]) for e in refused["errors"]] == [
        (2, f"probably a duplicate of {payroll}: the same title and owner"),
        (4, "probably a duplicate of row 3: the same title and owner"),
    ]
    assert "on_duplicate=skip, create or update" in refused["errors"][0]["expected"]
    assert row_counts(engine) == before

    skipped = _upload(client, "r.csv", content, on_duplicate="skip").json()
    assert skipped["skipped"] == [{"row": 2, "duplicate_of": payroll}, {"row": 4, "duplicate_of": "row 3"}]
    assert skipped["created"] == ["R-0002"]

    lines = ["Title,Owner,Category,Likelihood,Impact", "Payroll supplier fails,cfo,payroll,3,3"]
    twice = _upload(client, "r.csv", _csv(*lines, "Fire,it,site,2,2", "FIRE,it,site,2,2"), on_duplicate="update")
    assert [(e["row"], e["column"]) for e in assert_problem(twice, 422)["errors"]] == [(4, "title")]
    assert "on_duplicate=skip or create" in twice.json()["errors"][0]["expected"]  # it updates risks, not rows
    updated = _upload(client, "r.csv", _csv(*lines), on_duplicate="update").json()
    assert updated["updated"] == [payroll] and updated["created"] == []
    assert client.get(f"/api/v1/risks/{payroll}").json()["category"] == "payroll"

    created = _upload(client, "r.csv", content, on_duplicate="create").json()
    assert len(created["created"]) == 3
    several = _upload(client, "r.csv", _csv(*lines), dry_run=True, on_duplicate="update").json()["errors"]
    assert "several open risks" in several[0]["message"]
    assert_problem(_upload(client, "r.csv", content, on_duplicate="merge"), 422, "query.on_duplicate")


def test_cli_import_options(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_bytes(
        "Hazard;Resp;Area;P;S;Review\r\nRoof leak;estates;site;2;2;15/01/2027\r\nRoof leak;estates;site;2;2;\r\n"
        .encode("cp1252")
    )  # fmt: skip
    env = {**os.environ, "RISKOPS_DATABASE_URL": database_url}
    mapping = (
        '{"Hazard": "title", "Resp": "owner", "Area": "category", "P": "inherent_likelihood", "S": "inherent_impact"}'
    )
    run = [sys.executable, "-m", "riskops", "import", str(path), "--mapping", mapping]
    refused = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "row 3, column title: probably a duplicate of row 2" in refused.stderr
    assert (
        "body.mapping"
        in subprocess.run(
            [*run[:-1], '{"Hazard": "headline"}'], env=env, capture_output=True, text=True, timeout=60
        ).stderr
    )
    done = subprocess.run(
        [*run, "--on-duplicate", "skip", "--date-format", "dmy"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "imported 1 risk(s)" in done.stdout and "Review" in done.stdout, done.stderr


def test_a_risk_changed_while_the_file_was_checked_refuses_the_write(engine: Engine) -> None:
    """Rows are checked against the risk as read; the write finds a newer version: 409, nothing written."""
    db = Database(engine)
    with db.write() as session:
        risk = service.create_risk(session, RiskCreate.model_validate(risk_body()), ADMIN, SETTINGS)
    with db.read() as session:
        matrix = matrices.current(session)
    content = io.BytesIO(_csv("reference,owner,likelihood", f"{risk.reference},cfo,1"))
    checked = importer.check_file("r.csv", content, matrix.version, matrix.parsed(), ADMIN, SETTINGS, Register(db))
    assert [u.reference for u in checked.updates] == [risk.reference] and checked.error_count == 0
    with db.write() as session:
        service.update_risk(session, service.get_risk(session, risk.id), RiskUpdate(title="Renamed"), ADMIN, SETTINGS)
    before = row_counts(engine)
    with pytest.raises(Conflict, match="changed while the file was checked"), db.write() as session:
        matching.apply(session, checked.updates, ADMIN, SETTINGS)
    assert row_counts(engine) == before
    with db.read() as session:
        assert service.get_risk(session, risk.id).owner == risk.owner

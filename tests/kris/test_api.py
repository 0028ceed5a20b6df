"""KRIs over HTTP: defining with thresholds that fit the direction, versioned thresholds and history, ETags, values
pushed idempotently, and what refuses a request (naming the field, writing nothing)."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.kris.helpers import add_kri, add_risk, kri_body


def _at(clock: FrozenClock, minutes: int = 0) -> str:
    return (clock.now + timedelta(minutes=minutes)).isoformat()


def test_define_read_edit_and_keep_each_threshold_version(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    risk = add_risk(client)
    created = client.post("/api/v1/kris", json=kri_body(risks=[risk["reference"]], frequency="1h"))
    assert created.status_code == 201, created.text
    kri = created.json()
    assert created.headers["etag"] == '"1"' and created.headers["location"] == "/api/v1/kris/K-0001"
    assert kri["reference"] == "K-0001" and kri["frequency_minutes"] == 60 and kri["status"] is None
    assert [r["reference"] for r in kri["risks"]] == [risk["reference"]]
    assert [(t["version"], t["amber"], t["red"], t["set_by"]) for t in kri["thresholds"]] == [(1, 50, 100, "write-key")]
    for ref in ("K-0001", "k-1", "1"):
        assert client.get(f"/api/v1/kris/{ref}").json() == kri
    assert client.get("/api/v1/kris/K-0001", headers=keys.headers("read")).status_code == 200
    assert_problem(client.post("/api/v1/kris", json=kri_body(), headers=keys.headers("read")), 403)

    frozen_clock.advance(timedelta(hours=1))
    edited = client.patch("/api/v1/kris/K-0001", json={"amber": 40, "red": 80}, headers={"If-Match": '"1"'})
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] == '"2"' and edited.json()["threshold_version"] == 2
    versions = edited.json()["thresholds"]
    assert [(t["version"], t["amber"], t["red"]) for t in versions] == [(1, 50, 100), (2, 40, 80)]
    assert versions[1]["set_at"] > versions[0]["set_at"]
    renamed = client.patch("/api/v1/kris/K-0001", json={"name": "Failed sign-ins"}).json()
    assert renamed["threshold_version"] == 2 and renamed["version"] == 3  # a name is no new threshold version
    assert_problem(client.patch("/api/v1/kris/K-0001", json={"unit": "x"}, headers={"If-Match": '"1"'}), 412)
    history = client.get("/api/v1/kris/K-0001/history").json()["items"]
    assert [e["action"] for e in history] == ["created", "updated", "updated"]
    assert history[1]["changes"]["red"] == {"old": 100, "new": 80} and history[1]["actor"] == "write-key"
    assert_problem(client.get("/api/v1/kris/K-0002"), 404)
    assert_problem(client.get("/api/v1/kris/R-0001"), 404)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amber": 100, "red": 50}, "body.red"),  # higher is worse: red must be above amber
        ({"direction": "lower_is_worse"}, "body.red"),  # lower is worse: red must be below amber
        ({"amber": 50, "red": 50}, "body.red"),
        ({"direction": "sideways"}, "body.direction"),
        ({"frequency": "P1M"}, "body.frequency"),  # months have no fixed length
        ({"frequency": 0}, "body.frequency"),
        ({"source": "prometheus"}, "body.query"),
        ({"source": "prometheus", "query": "x" * 2001}, "body.query"),
        ({"escalation_policy": "nobody"}, "body.escalation_policy"),
        ({"risks": ["R-0099"]}, "body.risks.0"),
        ({"risks": ["not a risk"]}, "body.risks.0"),
        ({"processes": ["P-0042"]}, "body.processes.0"),
        ({"name": " "}, "body.name"),
        ({"unit": "x" * 41}, "body.unit"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_a_definition_that_does_not_fit_is_refused_naming_the_field(
    client: TestClient, engine: Engine, overrides: dict[str, Any], field: str
) -> None:
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/kris", json=kri_body(**overrides)), 422, field)
    assert row_counts(engine) == before


def test_values_are_idempotent_per_moment_and_a_different_value_at_a_moment_is_a_conflict(
    client: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    add_kri(client)
    batch = [{"at": _at(frozen_clock, -i), "value": 10.0 + i} for i in range(5)]
    first = client.post("/api/v1/kris/K-0001/values", json={"values": batch})
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 5, "unchanged": 0, "status": "green"}
    again = client.post("/api/v1/kris/K-0001/values", json={"values": batch})
    assert again.json() == {"recorded": 0, "unchanged": 5, "status": "green"}
    # The first moment written in another zone is the same moment.
    shifted = (frozen_clock.now + timedelta(hours=2)).isoformat().replace("+00:00", "+02:00")
    assert client.post("/api/v1/kris/K-0001/values", json={"values": [{"at": shifted, "value": 10.0}]}).json() == {
        "recorded": 0, "unchanged": 1, "status": "green"
    }  # fmt: skip
    before = row_counts(engine)
    clash = [{"at": _at(frozen_clock, 5), "value": 99.0}, {"at": batch[2]["at"], "value": 13.5}]
    problem = assert_problem(client.post("/api/v1/kris/K-0001/values", json={"values": clash}), 409, "body.values.1")
    assert "12.0" in problem["detail"]
    twice = [{"at": _at(frozen_clock, 7), "value": 1.0}, {"at": _at(frozen_clock, 7), "value": 2.0}]
    assert_problem(client.post("/api/v1/kris/K-0001/values", json={"values": twice}), 409, "body.values.1")
    assert row_counts(engine) == before
    history = client.get("/api/v1/kris/K-0001/values").json()
    assert [p["value"] for p in history] == [14.0, 13.0, 12.0, 11.0, 10.0] and len(history) == 5
    since = client.get("/api/v1/kris/K-0001/values", params={"since": batch[2]["at"]}).json()
    assert [p["value"] for p in since] == [12.0, 11.0, 10.0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"values": [{"at": "2026-07-01T09:00:00", "value": 1}]}', "body.values.0.at"),
        ('{"values": [{"at": "2026-07-01T09:00:00Z", "value": NaN}]}', "body.values.0.value"),
        ('{"values": [{"at": "2026-07-01T09:00:00Z", "value": 1e400}]}', "body.values.0.value"),
        ('{"values": [{"at": "2026-07-01T09:00:00Z", "value": "high"}]}', "body.values.0.value"),
        ('{"values": []}', "body.values"),
    ],
)
def test_a_value_that_is_not_a_finite_number_at_a_zoned_moment_is_refused(
    client: TestClient, engine: Engine, body: str, field: str
) -> None:
    add_kri(client)
    before = row_counts(engine)
    answer = client.post("/api/v1/kris/K-0001/values", content=body, headers={"Content-Type": "application/json"})
    assert_problem(answer, 422, field)
    assert row_counts(engine) == before


def test_a_batch_is_bounded(client: TestClient) -> None:
    add_kri(client)
    batch = [{"at": f"2026-06-01T00:00:{i % 60:02d}+00:00", "value": 1} for i in range(1001)]
    assert_problem(client.post("/api/v1/kris/K-0001/values", json={"values": batch}), 422, "body.values")
    assert_problem(client.post("/api/v1/kris/K-0009/values", json={"values": batch[:1]}), 404)


def test_the_chart_draws_the_history_and_thresholds_escaped(client: TestClient, frozen_clock: FrozenClock) -> None:
    add_kri(client, name="<script>alert(1)</script>")
    values = [{"at": _at(frozen_clock, -i), "value": v} for i, v in enumerate((20, 60, 120))]
    client.post("/api/v1/kris/K-0001/values", json={"values": values})
    chart = client.get("/api/v1/kris/K-0001/chart.svg")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    assert "<script>" not in chart.text and "&lt;script&gt;" in chart.text
    assert 'class="threshold-amber"' in chart.text and 'class="threshold-red"' in chart.text
    assert chart.text.count("<polyline") == 1


def _csv(client: TestClient, text: str) -> Any:
    return client.post("/api/v1/kris/values.csv", files={"file": ("values.csv", text.encode(), "text/csv")})


def test_a_csv_upload_records_every_row_or_none(client: TestClient, engine: Engine) -> None:
    add_kri(client)
    add_kri(client, name="Open vulnerabilities", direction="lower_is_worse", amber=10, red=5)
    good = "kri,at,value\nK-0001,2026-06-01T00:00:00Z,20\nK-0002,2026-06-01T00:00:00+02:00,3\n2,2026-05-31T00:00Z,12\n"
    answer = _csv(client, good)
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"] == 3
    assert client.get("/api/v1/kris/K-0002").json()["status"] == "red"
    assert _csv(client, good).json()["recorded"] == 0  # idempotent

    before = row_counts(engine)
    bad = "value,kri,at\n1,K-0001,2026-06-02T00:00:00Z\nx,K-0001,2026-06-03T00:00:00Z\n1,K-0009,2026-06-03T00:00:00\n"
    problem = assert_problem(_csv(client, bad), 422, "file.3.value")
    fields = [e["field"] for e in problem["errors"]]
    assert fields == ["file.3.value", "file.4.kri", "file.4.at"]
    assert_problem(_csv(client, "kri,when,value\n"), 422, "file.1")
    assert_problem(_csv(client, "kri,at,value\nK-0001,2026-06-01T00:00:00Z,21\n"), 409, "file.2")
    assert row_counts(engine) == before


@pytest.mark.parametrize("at", ["1969-12-31T23:59:59Z", "2026-07-02T09:00:01Z", "0001-01-01T00:00:00+14:00"])
def test_a_value_from_before_1970_or_the_future_is_refused(
    client: TestClient, frozen_clock: FrozenClock, at: str
) -> None:
    add_kri(client)
    answer = client.post("/api/v1/kris/K-0001/values", json={"values": [{"at": at, "value": 1}]})
    assert_problem(answer, 422, "body.values.0.at")
    assert_problem(
        client.get("/api/v1/kris/K-0001/values", params={"since": "2026-07-01T00:00:00"}), 422, "query.since"
    )


def test_processes_are_linked_by_reference_or_key_and_a_deleted_one_lets_go(client: TestClient) -> None:
    process = {"key": "payroll", "name": "Payroll", "owner": "hr", "criticality": "critical", "rto_minutes": "4h"}
    created = client.post("/api/v1/processes", json=process)
    assert created.status_code == 201, created.text
    kri = add_kri(client, processes=["payroll", created.json()["reference"]])
    assert [p["reference"] for p in kri["processes"]] == [created.json()["reference"]]
    assert client.delete(f"/api/v1/processes/{created.json()['reference']}").status_code == 204
    assert client.get("/api/v1/kris/K-0001").json()["processes"] == []

"""Quantified loss over HTTP: a risk with an estimate, and the bodies the tests send."""

from typing import Any

from fastapi.testclient import TestClient

from tests.treatments.helpers import new_risk


def estimate_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "frequency": {"min": 0.5, "most_likely": 2, "max": 6},
        "magnitude": {"min": 10_000, "most_likely": 50_000, "max": 400_000},
        "rationale": "Two floods a decade upstream; losses from the 2021 event.",
    }
    body.update(overrides)
    return body


def quantified_risk(client: TestClient, estimate: dict[str, Any] | None = None, **risk: Any) -> dict[str, Any]:
    created = new_risk(client, **risk)
    response = client.put(f"/api/v1/risks/{created['reference']}/loss-estimate", json=estimate or estimate_body())
    assert response.status_code == 200, response.text
    return created


def analyse(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/loss-analyses", json={"trials": 2_000, "seed": 1, **body})
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer

"""Which playbooks answer a risk: GET /api/v1/playbooks?risk= ranks those that fit it first, and says why."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from riskops.playbooks.loader import load_paths
from riskops.playbooks.spec import PlaybookSpec
from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body


def _library(directory: Path) -> list[PlaybookSpec]:
    return [item.spec for item in load_paths([directory])]


def _answering(directory: Path, category: str) -> list[str]:
    """The shipped playbooks whose answers name `category`, by slug."""
    return sorted(s.id for s in _library(directory) if category in [c.lower() for c in s.answers.categories])


def _listed(client: TestClient, **params: Any) -> list[tuple[str, str | None]]:
    response = client.get("/api/v1/playbooks", params=params)
    assert response.status_code == 200, response.text
    return [(p["id"], p["fits"]) for p in response.json()]


def _risk(client: TestClient, category: str) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(category=category))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _publish_naming(client: TestClient, keys: Keys, base: PlaybookSpec, slug: str, refs: list[str]) -> None:
    spec = base.model_dump(mode="json")
    spec.update(id=slug, version=1, title=f"{base.title} ({slug})")
    spec["answers"] = {"categories": [], "risks": refs}
    response = client.post("/api/v1/playbooks", json=spec, headers=keys.headers("admin"))
    assert response.status_code == 201, response.text


def test_playbooks_for_the_risks_category_come_first_whatever_its_case(client: TestClient, playbooks: Path) -> None:
    cyber = _answering(playbooks, "cyber")
    assert cyber and len(cyber) < len(_library(playbooks)), "the library must both answer and not answer 'cyber'"
    risk = _risk(client, "CYBER")
    listed = _listed(client, risk=risk["reference"])
    assert listed[: len(cyber)] == [(slug, "category") for slug in cyber]
    rest = listed[len(cyber) :]
    assert [fits for _, fits in rest] == [None] * len(rest)
    assert [slug for slug, _ in rest] == sorted(slug for slug, _ in rest)
    assert sorted(slug for slug, _ in listed) == sorted(s.id for s in _library(playbooks))


def test_a_playbook_naming_the_risk_comes_before_those_for_its_category(
    client: TestClient, keys: Keys, playbooks: Path
) -> None:
    facilities = _answering(playbooks, "facilities")
    assert facilities
    other = _risk(client, "people")
    risk = _risk(client, "Facilities")
    base = _library(playbooks)[0]
    _publish_naming(client, keys, base, "zz-flood-at-head-office", [risk["reference"]])
    _publish_naming(client, keys, base, "aa-other-risk", [other["reference"]])

    expected_head = [("zz-flood-at-head-office", "risk")] + [(slug, "category") for slug in facilities]
    by_reference = _listed(client, risk=risk["reference"])
    assert by_reference[: len(expected_head)] == expected_head
    assert ("aa-other-risk", None) in by_reference[len(expected_head) :]
    assert _listed(client, risk=str(risk["id"])) == by_reference  # a numeric id works as well
    assert _listed(client, risk=risk["reference"].lower()) == by_reference


def test_without_a_risk_nothing_is_ranked(client: TestClient, playbooks: Path) -> None:
    _risk(client, "cyber")
    plain = _listed(client)
    assert plain == sorted((s.id, None) for s in _library(playbooks))
    assert client.get("/api/v1/playbooks?risk=").json() == client.get("/api/v1/playbooks").json()


@pytest.mark.parametrize("ref", ["R-9999", "4242", "not-a-risk"])
def test_an_unknown_risk_is_a_404(client: TestClient, playbooks: Path, ref: str) -> None:
    _risk(client, "cyber")
    assert_problem(client.get("/api/v1/playbooks", params={"risk": ref}), 404)

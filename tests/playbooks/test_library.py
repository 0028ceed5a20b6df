"""The shipped playbook library: every file valid and sound, and every playbook activatable over HTTP."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops import bootstrap
from riskops.playbooks.loader import LoadedPlaybook, load_paths
from riskops.playbooks.spec import PlaybookSpec
from tests.conftest import FrozenClock

PLAYBOOK_DIR = Path(__file__).resolve().parents[2] / "playbooks"
PLAYBOOK_FILES = sorted(PLAYBOOK_DIR.glob("*.yaml"))


def _library() -> list[LoadedPlaybook]:
    return load_paths([PLAYBOOK_DIR])


def _spec(path: Path) -> PlaybookSpec:
    (loaded,) = load_paths([path])
    return loaded.spec


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
def synced(engine: Engine) -> list[str]:
    """The shipped library published into this test's database."""
    return bootstrap.sync_playbooks(engine, PLAYBOOK_DIR)


# ---- the files ----


def test_at_least_six_playbooks_load_with_ids_matching_file_names() -> None:
    loaded = _library()
    assert len(loaded) >= 6
    assert len(loaded) == len(PLAYBOOK_FILES)
    assert sorted(Path(item.file).stem for item in loaded) == sorted(item.spec.id for item in loaded)
    for item in loaded:
        assert Path(item.file).stem == item.spec.id


def test_every_playbook_has_a_required_incident_commander() -> None:
    for item in _library():
        roles = {role.id: role for role in item.spec.roles}
        assert "incident-commander" in roles, item.file
        assert roles["incident-commander"].required, item.file


def test_no_step_is_due_before_a_step_it_depends_on() -> None:
    for item in _library():
        due = {step.id: step.due_minutes for step in item.spec.steps}
        for step in item.spec.steps:
            for dependency in step.depends_on:
                assert step.due_minutes >= due[dependency], f"{item.spec.id}: {step.id} is due before {dependency}"


def test_recovery_time_objective_fits_within_tolerable_disruption() -> None:
    """Each shipped playbook sets its own objectives: no register's processes are known in advance."""
    for item in _library():
        impact = item.spec.business_impact
        assert impact.rto_minutes is not None and impact.mtpd_minutes is not None and impact.rpo_minutes is not None
        assert impact.rto_minutes <= impact.mtpd_minutes, item.spec.id


def test_personal_data_breach_notifies_the_regulator_within_72_hours() -> None:
    spec = _spec(PLAYBOOK_DIR / "personal-data-breach.yaml")
    regulator = [c for c in spec.communications if c.audience == "regulator"]
    assert regulator, "no communication to the regulator"
    assert 4320 in [c.due_minutes for c in regulator]  # 72 hours


# ---- over HTTP ----


def test_listing_shows_every_shipped_playbook_at_its_file_version(client: TestClient, synced: list[str]) -> None:
    versions = {item.spec.id: item.spec.version for item in _library()}
    assert sorted(versions) == sorted(path.stem for path in PLAYBOOK_FILES)
    assert sorted(synced) == sorted(f"{slug} v{version}" for slug, version in versions.items())
    response = client.get("/api/v1/playbooks")
    assert response.status_code == 200, response.text
    listed = response.json()
    assert sorted(p["id"] for p in listed) == sorted(versions)
    assert all(p["version"] == versions[p["id"]] and p["versions"] == [p["version"]] for p in listed)


def test_schema_requires_the_core_fields(client: TestClient) -> None:
    response = client.get("/api/v1/playbooks/schema")
    assert response.status_code == 200, response.text
    schema = response.json()
    assert schema["type"] == "object"
    assert {"id", "version", "steps", "roles"} <= set(schema["required"])
    # the recovery objectives may come from the processes a playbook restores instead
    assert "unless `processes`" in schema["properties"]["business_impact"]["description"]


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda p: p.stem)
def test_every_shipped_playbook_activates_with_its_whole_plan(
    client: TestClient, synced: list[str], frozen_clock: FrozenClock, path: Path
) -> None:
    spec = _spec(path)
    response = client.post(f"/api/v1/playbooks/{spec.id}/activate", json={})
    assert response.status_code == 201, response.text
    incident: dict[str, Any] = response.json()
    assert incident["playbook"] == spec.id and incident["playbook_version"] == spec.version
    assert incident["title"] == spec.title and incident["severity"] == spec.severity
    assert incident["state"] == "declared"

    declared_at = _at(incident["declared_at"])
    assert declared_at == frozen_clock.now
    rto = spec.business_impact.rto_minutes
    assert rto is not None and incident["rto_minutes"] == rto
    assert _at(incident["breach_at"]) == declared_at + timedelta(minutes=rto)

    assert [r["key"] for r in incident["roles"]] == [r.id for r in spec.roles]
    assert [r["required"] for r in incident["roles"]] == [r.required for r in spec.roles]
    assert [s["key"] for s in incident["steps"]] == [s.id for s in spec.steps]
    for step, planned_step in zip(incident["steps"], spec.steps, strict=True):
        assert _at(step["due_at"]) == declared_at + timedelta(minutes=planned_step.due_minutes), step["key"]
        assert step["depends_on"] == planned_step.depends_on and step["status"] == "pending"

    assert [m["key"] for m in incident["communications"]] == [c.id for c in spec.communications]
    reference = incident["reference"]
    for message, planned in zip(incident["communications"], spec.communications, strict=True):
        assert _at(message["due_at"]) == declared_at + timedelta(minutes=planned.due_minutes), message["key"]
        assert message["audience"] == planned.audience and message["status"] == "pending"
        if "{incident_ref}" in planned.template:
            assert reference in message["body"], message["key"]
        if "{incident_title}" in planned.template:
            assert spec.title in message["body"], message["key"]
        if "{declared_at}" in planned.template:
            assert "2026-07-01 09:00 UTC" in message["body"], message["key"]
        assert "{incident_" not in message["body"] and "{declared_at}" not in message["body"], message["key"]


def test_the_library_references_incidents_in_its_messages() -> None:
    """The placeholder check above would pass vacuously if no template used {incident_ref}."""
    for item in _library():
        assert any("{incident_ref}" in c.template for c in item.spec.communications), item.spec.id

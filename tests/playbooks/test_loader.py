"""Playbook files: validated whole, synced as versions, and refused with file, field and reason."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from riskops import bootstrap
from riskops.playbooks.loader import PlaybookFilesInvalid, load_paths
from riskops.playbooks.models import PlaybookVersion
from tests.conftest import PLAYBOOKS, Keys
from tests.helpers import assert_problem, free_port


def _copy(tmp_path: Path, *names: str) -> Path:
    directory = tmp_path / "playbooks"
    directory.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(PLAYBOOKS / f"{name}.yaml", directory)
    return directory


def _edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"severity": "SEV9"}, "severity", "SEV1"),
        ({"version": 0}, "version", "greater than or equal to 1"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"id": "other-name"}, "id", "must match the file name"),
        ({"business_impact": {"rto_minutes": 600, "rpo_minutes": 0, "mtpd_minutes": 60}}, "business_impact", "mtpd"),
    ],
)
def test_invalid_file_names_file_field_and_reason(
    tmp_path: Path, change: dict[str, Any], field: str, reason: str
) -> None:
    directory = _copy(tmp_path, "pr-crisis", "ransomware")
    _edit(directory / "pr-crisis.yaml", **change)
    with pytest.raises(PlaybookFilesInvalid) as caught:
        load_paths([directory])
    [problem] = caught.value.problems
    assert problem.file.endswith("pr-crisis.yaml") and problem.field == field and reason in problem.reason


def test_broken_references_and_cycles_are_found(tmp_path: Path) -> None:
    directory = _copy(tmp_path, "pr-crisis")
    data = yaml.safe_load((directory / "pr-crisis.yaml").read_text())
    data["steps"][0]["depends_on"] = [data["steps"][-1]["id"]]
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PlaybookFilesInvalid, match="dependency cycle"):
        load_paths([directory])
    data["steps"][0]["depends_on"] = ["no-such-step"]
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(PlaybookFilesInvalid, match="unknown step 'no-such-step'"):
        load_paths([directory])
    (directory / "pr-crisis.yaml").write_text("id: [unclosed")
    with pytest.raises(PlaybookFilesInvalid, match="not readable YAML"):
        load_paths([directory])


def _versions(engine: Engine, slug: str) -> list[int]:
    with Session(engine) as session:
        return list(session.exec(select(PlaybookVersion.version).where(PlaybookVersion.slug == slug)))


def test_sync_makes_a_version_only_for_changed_content(engine: Engine, tmp_path: Path, client: TestClient) -> None:
    directory = _copy(tmp_path, "pr-crisis", "ransomware")
    assert sorted(bootstrap.sync_playbooks(engine, directory)) == ["pr-crisis v1", "ransomware v1"]
    running = client.post("/api/v1/playbooks/pr-crisis/activate", json={}).json()
    assert bootstrap.sync_playbooks(engine, directory) == []  # unchanged files: nothing new

    _edit(directory / "pr-crisis.yaml", summary="Changed but not bumped.")
    with pytest.raises(PlaybookFilesInvalid) as caught:
        bootstrap.sync_playbooks(engine, directory)
    assert caught.value.problems[0].field == "version" and "bump the version" in caught.value.problems[0].reason
    assert _versions(engine, "pr-crisis") == [1]

    _edit(directory / "pr-crisis.yaml", version=2)
    assert bootstrap.sync_playbooks(engine, directory) == ["pr-crisis v2"]
    assert sorted(_versions(engine, "pr-crisis")) == [1, 2]
    assert client.get("/api/v1/playbooks/pr-crisis").json()["version"] == 2
    kept = client.get(f"/api/v1/incidents/{running['id']}").json()
    assert kept["playbook_version"] == 1, "an activation keeps the version it started with"
    assert client.post("/api/v1/playbooks/pr-crisis/activate", json={}).json()["playbook_version"] == 2


def test_one_bad_file_loads_nothing(engine: Engine, tmp_path: Path) -> None:
    directory = _copy(tmp_path, "pr-crisis", "ransomware")
    _edit(directory / "ransomware.yaml", severity="urgent")
    with pytest.raises(PlaybookFilesInvalid):
        bootstrap.sync_playbooks(engine, directory)
    assert _versions(engine, "pr-crisis") == [] and _versions(engine, "ransomware") == []


def test_publish_through_the_api(client: TestClient, keys: Keys, playbooks: Path) -> None:
    admin = keys.headers("admin")
    spec = client.get("/api/v1/playbooks/site-emergency").json()["playbook"]
    shipped = spec["version"]
    assert_problem(client.post("/api/v1/playbooks", json=spec), 403)
    assert client.post("/api/v1/playbooks", json=spec, headers=admin).status_code == 200  # same content: no-op
    spec["summary"] = "Revised after the fire drill."
    assert_problem(client.post("/api/v1/playbooks", json=spec, headers=admin), 409, "version")
    spec["version"] = shipped + 1
    published = client.post("/api/v1/playbooks", json=spec, headers=admin)
    assert published.status_code == 201 and published.json()["source"] == "api"
    versions = client.get("/api/v1/playbooks/site-emergency/versions").json()
    assert [v["version"] for v in versions] == [shipped + 1, shipped]
    spec["steps"][0]["role"] = "nobody"
    spec["version"] = shipped + 2
    assert_problem(client.post("/api/v1/playbooks", json=spec, headers=admin), 422)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "riskops", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_cli_validate(tmp_path: Path) -> None:
    good = _cli("playbooks", "validate", str(PLAYBOOKS))
    assert good.returncode == 0 and good.stdout.count("ok ") >= 6
    directory = _copy(tmp_path, "pr-crisis")
    _edit(directory / "pr-crisis.yaml", severity="urgent")
    bad = _cli("playbooks", "validate", str(directory))
    assert bad.returncode == 1
    assert "pr-crisis.yaml: severity:" in bad.stderr


def test_serve_refuses_to_start_with_an_invalid_playbook(database_url: str, tmp_path: Path) -> None:
    directory = _copy(tmp_path, "pr-crisis")
    _edit(directory / "pr-crisis.yaml", severity="urgent")
    env = {"RISKOPS_DATABASE_URL": database_url, "RISKOPS_PLAYBOOKS_DIR": str(directory)}
    result = _cli("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 1
    assert "service not started" in result.stderr and "pr-crisis.yaml: severity:" in result.stderr


def test_optional_and_due_from_are_validated_and_documented(tmp_path: Path, client: TestClient) -> None:
    directory = _copy(tmp_path, "pr-crisis")
    data = yaml.safe_load((directory / "pr-crisis.yaml").read_text())
    data["steps"][1]["due_from"] = "awareness"
    data["communications"][0]["optional"] = "sometimes"
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PlaybookFilesInvalid) as caught:
        load_paths([directory])
    assert sorted(p.field for p in caught.value.problems) == ["communications.0.optional", "steps.1.due_from"]

    schema = client.get("/api/v1/playbooks/schema").json()["$defs"]
    for kind in ("Step", "Communication"):
        fields = schema[kind]["properties"]
        assert fields["optional"]["default"] is False and "closes" in fields["optional"]["description"]
        assert (
            fields["due_from"]["enum"] == ["declaration", "detection"]
            and fields["due_from"]["default"] == "declaration"
        )
        assert "detected_at" in fields["due_from"]["description"]


def test_optional_and_due_from_at_their_defaults_are_no_new_content(engine: Engine, tmp_path: Path) -> None:
    """Playbooks published before these fields existed keep their content hash: no version to bump."""
    directory = _copy(tmp_path, "pr-crisis")
    assert bootstrap.sync_playbooks(engine, directory) == ["pr-crisis v1"]
    data = yaml.safe_load((directory / "pr-crisis.yaml").read_text())
    for item in data["steps"] + data["communications"]:
        item.update(optional=False, due_from="declaration")
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert bootstrap.sync_playbooks(engine, directory) == []

    data["communications"][0]["optional"] = True  # a real change: a new version, or the sync is refused
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PlaybookFilesInvalid, match="bump the version"):
        bootstrap.sync_playbooks(engine, directory)
    _edit(directory / "pr-crisis.yaml", version=2)
    assert bootstrap.sync_playbooks(engine, directory) == ["pr-crisis v2"]


def test_recovery_objectives_are_required_unless_processes_are_named(tmp_path: Path) -> None:
    directory = _copy(tmp_path, "pr-crisis")
    data = yaml.safe_load((directory / "pr-crisis.yaml").read_text())
    data["business_impact"] = {"rto_minutes": 240}
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PlaybookFilesInvalid) as caught:
        load_paths([directory])
    [problem] = caught.value.problems
    assert problem.field == "business_impact" and "rpo_minutes, mtpd_minutes required unless `processes`" in str(
        problem
    )
    data["processes"] = ["payroll", "P-0001"]
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    [loaded] = load_paths([directory])
    assert loaded.spec.processes == ["payroll", "P-0001"] and loaded.spec.business_impact.mtpd_minutes is None
    del data["business_impact"]
    (directory / "pr-crisis.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert load_paths([directory])[0].spec.business_impact.rto_minutes is None


@pytest.mark.parametrize(
    ("processes", "field"),
    [(["Payroll"], "processes.0"), (["payroll", "payroll"], "processes"), ([f"p{i}x" for i in range(21)], "processes")],
)
def test_the_processes_a_playbook_restores_are_checked(tmp_path: Path, processes: list[str], field: str) -> None:
    directory = _copy(tmp_path, "pr-crisis")
    _edit(directory / "pr-crisis.yaml", processes=processes)
    with pytest.raises(PlaybookFilesInvalid) as caught:
        load_paths([directory])
    assert [p.field for p in caught.value.problems] == [field]


def test_no_processes_named_is_no_new_content(engine: Engine, tmp_path: Path) -> None:
    """Playbooks published before `processes` existed keep their content hash: no version to bump."""
    directory = _copy(tmp_path, "pr-crisis")
    assert bootstrap.sync_playbooks(engine, directory) == ["pr-crisis v1"]
    _edit(directory / "pr-crisis.yaml", processes=[])
    assert bootstrap.sync_playbooks(engine, directory) == []
    _edit(directory / "pr-crisis.yaml", processes=["payroll"], version=2)
    assert bootstrap.sync_playbooks(engine, directory) == ["pr-crisis v2"]

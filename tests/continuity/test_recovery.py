"""Can we meet its RTO: playbooks name the processes they restore, take the RTO, RPO and MTPD they do not set from
them (the strictest wins), are warned where their own figures differ, and activations follow what results."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import FrozenClock, Keys
from tests.continuity.support import make_process
from tests.helpers import assert_problem


@pytest.fixture
def base(client: TestClient, playbooks: Path) -> dict[str, Any]:
    """A shipped playbook's content, to publish variants of."""
    spec: dict[str, Any] = client.get("/api/v1/playbooks/site-emergency").json()["playbook"]
    return spec


def _publish(client: TestClient, keys: Keys, base: dict[str, Any], slug: str, processes: list[str],
             **figures: int) -> None:  # fmt: skip
    spec = {**base, "id": slug, "version": 1, "title": f"Restore ({slug})", "processes": processes}
    spec["business_impact"] = {"depends_on": base["business_impact"]["depends_on"], **figures}
    response = client.post("/api/v1/playbooks", json=spec, headers=keys.headers("admin"))
    assert response.status_code == 201, response.text


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_playbook_takes_the_strictest_objectives_of_the_processes_it_restores(
    client: TestClient, keys: Keys, base: dict[str, Any], frozen_clock: FrozenClock
) -> None:
    make_process(client, "payroll", rto_minutes="4h", rpo_minutes="1h", mtpd_minutes="1d")
    make_process(client, "hr-data", rto_minutes="8h", rpo_minutes="30m", mtpd_minutes="2d")
    _publish(client, keys, base, "payroll-recovery", ["payroll", "P-0002"])
    objectives = client.get("/api/v1/playbooks/payroll-recovery/objectives", headers=keys.headers("read")).json()
    assert (objectives["rto_minutes"], objectives["rpo_minutes"], objectives["mtpd_minutes"]) == (240, 30, 1440)
    assert objectives["sources"] == {"rto_minutes": "P-0001", "rpo_minutes": "P-0002", "mtpd_minutes": "P-0001"}
    assert objectives["warnings"] == []
    assert [(p["name"], p["process"]["key"], p["rto_minutes"]) for p in objectives["processes"]] == [
        ("payroll", "payroll", 240), ("P-0002", "hr-data", 480),
    ]  # fmt: skip
    listed = {p["id"]: p for p in client.get("/api/v1/playbooks").json()}["payroll-recovery"]
    assert listed["rto_minutes"] is None and listed["processes"] == ["payroll", "P-0002"]

    # resolved at activation: a process's RTO changed since publishing is the one followed
    assert client.patch("/api/v1/processes/payroll", json={"rto_minutes": "2h"}).status_code == 200
    incident = client.post("/api/v1/playbooks/payroll-recovery/activate", json={}).json()
    assert (incident["rto_minutes"], incident["mtpd_minutes"]) == (120, 1440)
    declared = _at(incident["declared_at"])
    assert _at(incident["breach_at"]) == declared + timedelta(hours=2)
    assert _at(incident["mtpd_at"]) == declared + timedelta(days=1)


def test_own_figures_that_differ_load_with_a_warning_and_are_followed(
    client: TestClient, keys: Keys, base: dict[str, Any], frozen_clock: FrozenClock
) -> None:
    make_process(client, "payroll", rto_minutes="4h", rpo_minutes="1h", mtpd_minutes="1d")
    _publish(client, keys, base, "slow-recovery", ["payroll"], rto_minutes=480, rpo_minutes=60, mtpd_minutes=1440)
    objectives = client.get("/api/v1/playbooks/slow-recovery/objectives").json()
    assert objectives["rto_minutes"] == 480 and objectives["sources"]["rto_minutes"] == "playbook"
    assert objectives["warnings"] == [
        "business_impact.rto_minutes: 480 min is looser than the RTO of 240 min of process 'payroll' it restores: "
        "the process's objective is not met"
    ]
    incident = client.post("/api/v1/playbooks/slow-recovery/activate", json={}).json()
    assert incident["rto_minutes"] == 480
    notes = client.get(f"/api/v1/incidents/{incident['reference']}/timeline").json()["items"]
    assert [n["text"] for n in notes if n["kind"] == "note"] == [f"Recovery objectives: {objectives['warnings'][0]}."]


def test_can_we_meet_its_rto(client: TestClient, keys: Keys, base: dict[str, Any]) -> None:
    make_process(client, "payroll", rto_minutes="4h", mtpd_minutes="1d")
    make_process(client, "ledger")  # no objectives: nothing to meet
    before = client.get("/api/v1/processes/payroll").json()["recovery"]
    assert before == {"rto_met": False, "rpo_met": None, "mtpd_met": False, "playbooks": []}  # nothing restores it
    _publish(client, keys, base, "slow-recovery", ["payroll"], rto_minutes=480, rpo_minutes=60, mtpd_minutes=1440)
    slow = client.get("/api/v1/processes/payroll").json()["recovery"]
    assert (slow["rto_met"], slow["mtpd_met"]) == (False, True)
    [plan] = slow["playbooks"]
    assert plan["id"] == "slow-recovery" and (plan["rto_met"], plan["mtpd_met"], plan["rpo_met"]) == (False, True, None)
    assert plan["warnings"] and plan["rto_minutes"] == 480
    _publish(client, keys, base, "fast-recovery", ["payroll", "ledger"])
    both = client.get("/api/v1/processes/payroll", headers=keys.headers("read")).json()["recovery"]
    assert [(p["id"], p["rto_minutes"], p["rto_met"]) for p in both["playbooks"]] == [
        ("fast-recovery", 240, True), ("slow-recovery", 480, False),
    ]  # fmt: skip
    assert (both["rto_met"], both["mtpd_met"]) == (True, True)
    ledger = client.get("/api/v1/processes/ledger").json()["recovery"]
    assert ledger["rto_met"] is None and [p["id"] for p in ledger["playbooks"]] == ["fast-recovery"]
    # a playbook names the process: it is archived, not deleted
    refused = assert_problem(client.delete("/api/v1/processes/ledger"), 409, "playbooks")
    assert refused["errors"][0]["message"] == "restore it: fast-recovery"


def test_without_any_figure_an_activation_has_no_recovery_deadline(
    client: TestClient, keys: Keys, base: dict[str, Any], frozen_clock: FrozenClock
) -> None:
    _publish(client, keys, base, "ghost-recovery", ["ghost"])
    objectives = client.get("/api/v1/playbooks/ghost-recovery/objectives").json()
    assert objectives["processes"] == [
        {"name": "ghost", "process": None, "rto_minutes": None, "rpo_minutes": None, "mtpd_minutes": None}
    ]
    assert objectives["warnings"][0] == "processes: 'ghost' is not a registered process; its objectives are unknown"
    incident = client.post("/api/v1/playbooks/ghost-recovery/activate", json={}).json()
    assert (incident["rto_minutes"], incident["breach_at"], incident["mtpd_at"]) == (None, None, None)
    timeline = client.get(f"/api/v1/incidents/{incident['reference']}/timeline").json()["items"]
    [activated] = [e for e in timeline if e["kind"] == "playbook.activated"]
    assert activated["text"].endswith("no recovery time objective")
    assert_problem(client.get("/api/v1/playbooks/nothing/objectives"), 404)
    assert_problem(client.get("/api/v1/playbooks/ghost-recovery/objectives", params={"version": 2}), 404)

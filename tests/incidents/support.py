"""Working an incident's plan over HTTP, as its people would, so that it may close."""

from typing import Any

from fastapi.testclient import TestClient


def finish_obligations(client: TestClient, incident: dict[str, Any], *, optional: bool = False) -> dict[str, Any]:
    """Complete every required step in dependency order and send every required communication (the optional ones
    too with optional=True); returns the incident as it then is."""
    ref = incident["reference"]
    steps = [s for s in incident["steps"] if s["status"] in ("pending", "in-progress")]
    finished = {s["key"] for s in incident["steps"] if s["status"] in ("done", "skipped")}
    wanted = [s for s in steps if s["required"] or optional]
    while wanted:
        ready = [s for s in wanted if set(s["depends_on"]) <= finished]
        assert ready, f"no step of {[s['key'] for s in wanted]} can start"
        for step in ready:
            response = client.post(f"/api/v1/incidents/{ref}/steps/{step['key']}/complete")
            assert response.status_code == 200, response.text
            finished.add(step["key"])
        wanted = [s for s in wanted if s["key"] not in finished]
    for message in incident["communications"]:
        if message["status"] == "pending" and (message["required"] or optional):
            response = client.post(f"/api/v1/incidents/{ref}/communications/{message['key']}/sent", json={})
            assert response.status_code == 200, response.text
    current: dict[str, Any] = client.get(f"/api/v1/incidents/{ref}").json()
    return current

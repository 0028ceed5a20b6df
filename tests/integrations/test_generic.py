"""The generic inbound shape (token or Standard Webhooks signature) and administering integrations."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from tests.conftest import Keys
from tests.helpers import assert_problem, row_counts
from tests.integrations.support import bearer, incident, incidents, make_integration, outcomes

ENDPOINT = "/api/v1/inbound/generic"


def _alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "action": "trigger",
        "dedup_key": "backup-job/nightly",
        "title": "Nightly backup failed",
        "severity": "SEV2",
        "labels": {"service": "backup", "env": "prod"},
        "details": "The nightly backup exited with status 2.",
    }
    alert.update(overrides)
    return alert


def _signed_headers(
    secret: str, content: str, *, at: datetime | None = None, msg_id: str | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "Authorization": "",
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, content),
    }


# ---- token ----


def test_token_trigger_acknowledge_resolve(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "generic")
    token = integration["token"]

    opened = client.post(ENDPOINT, json=_alert(), headers=bearer(token))
    assert opened.status_code == 202, opened.text
    answer = opened.json()
    assert answer["status"] == "ok" and answer["outcome"] == "opened"
    created = incident(client, answer["incident_id"])
    assert created["severity"] == "SEV2" and created["title"] == "Nightly backup failed"
    assert created["description"] == "The nightly backup exited with status 2."

    again = client.post(ENDPOINT, json=_alert(), params={"token": token}, headers={"Authorization": ""})
    assert again.status_code == 202 and again.json()["outcome"] == "attached"

    ack = client.post(
        ENDPOINT, json={"action": "acknowledge", "dedup_key": "backup-job/nightly"}, headers=bearer(token)
    )
    assert ack.status_code == 202 and ack.json()["outcome"] == "acknowledged"
    done = client.post(ENDPOINT, json={"action": "resolve", "dedup_key": "backup-job/nightly"}, headers=bearer(token))
    assert done.status_code == 202 and done.json()["outcome"] == "resolved"
    assert incident(client, created["id"])["state"] == "resolved"
    assert len(incidents(client)) == 1
    assert outcomes(client, keys, integration["id"]) == ["opened", "attached", "acknowledged", "resolved"]


@pytest.mark.parametrize(
    "headers, query",
    [
        ({"Authorization": ""}, {}),
        ({"Authorization": "Bearer rki_wrong"}, {}),
        ({"Authorization": ""}, {"token": "rki_wrong"}),
    ],
    ids=["missing", "wrong-bearer", "wrong-query"],
)
def test_wrong_or_missing_token_is_refused(
    client: TestClient, keys: Keys, engine: Engine, headers: dict[str, str], query: dict[str, str]
) -> None:
    make_integration(client, keys, "generic")
    before = row_counts(engine)
    response = client.post(ENDPOINT, json=_alert(), headers=headers, params=query)
    assert_problem(response, 401)
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"action": "trigger", "title": "x"}, "dedup_key"),
        (_alert(severity="SEV9"), "severity"),
        (_alert(unknown="field"), "unknown"),
    ],
    ids=["no-dedup-key", "bad-severity", "extra-field"],
)
def test_invalid_generic_body_is_rejected(
    client: TestClient, keys: Keys, engine: Engine, body: dict[str, Any], field: str
) -> None:
    integration = make_integration(client, keys, "generic")
    before = row_counts(engine)
    response = client.post(ENDPOINT, json=body, headers=bearer(integration["token"]))
    assert response.status_code == 400, response.text
    assert any(field in e for e in response.json()["errors"])
    assert outcomes(client, keys, integration["id"]) == ["rejected"]
    assert row_counts(engine)["incident"] == before["incident"]


# ---- Standard Webhooks signatures ----


def test_signed_alert_is_accepted(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "generic")
    secret = integration["signing_secret"]
    assert secret.startswith("whsec_")
    content = json.dumps(_alert())

    response = client.post(f"{ENDPOINT}/{integration['id']}", content=content, headers=_signed_headers(secret, content))
    assert response.status_code == 202, response.text
    assert response.json()["outcome"] == "opened"
    assert len(incidents(client)) == 1


def _refused(client: TestClient, engine: Engine, path: str, content: str, headers: dict[str, str]) -> None:
    before = row_counts(engine)
    response = client.post(path, content=content, headers=headers)
    assert_problem(response, 401)
    assert row_counts(engine) == before


def test_tampered_body_is_refused(client: TestClient, keys: Keys, engine: Engine) -> None:
    integration = make_integration(client, keys, "generic")
    content = json.dumps(_alert())
    headers = _signed_headers(integration["signing_secret"], content)
    tampered = json.dumps(_alert(severity="SEV1"))
    _refused(client, engine, f"{ENDPOINT}/{integration['id']}", tampered, headers)


def test_wrong_secret_is_refused(client: TestClient, keys: Keys, engine: Engine) -> None:
    integration = make_integration(client, keys, "generic")
    other = make_integration(client, keys, "generic", name="other")
    content = json.dumps(_alert())
    _refused(
        client, engine, f"{ENDPOINT}/{integration['id']}", content, _signed_headers(other["signing_secret"], content)
    )


def test_stale_timestamp_is_refused(client: TestClient, keys: Keys, engine: Engine) -> None:
    integration = make_integration(client, keys, "generic")
    content = json.dumps(_alert())
    old = datetime.now(UTC) - timedelta(minutes=10)
    headers = _signed_headers(integration["signing_secret"], content, at=old)
    _refused(client, engine, f"{ENDPOINT}/{integration['id']}", content, headers)


def test_missing_signature_headers_and_unknown_integration_are_refused(
    client: TestClient, keys: Keys, engine: Engine
) -> None:
    integration = make_integration(client, keys, "generic")
    content = json.dumps(_alert())
    _refused(client, engine, f"{ENDPOINT}/{integration['id']}", content, {"Authorization": ""})
    headers = _signed_headers(integration["signing_secret"], content)
    _refused(client, engine, f"{ENDPOINT}/{integration['id'] + 1000}", content, headers)
    # The token is not a signature, and the signed path does not take it.
    _refused(client, engine, f"{ENDPOINT}/{integration['id']}", content, bearer(integration["token"]))


def test_signed_path_refuses_other_kinds(client: TestClient, keys: Keys, engine: Engine) -> None:
    pagerduty = make_integration(client, keys, "pagerduty-events-v2")
    generic = make_integration(client, keys, "generic", name="generic")
    content = json.dumps(_alert())
    headers = _signed_headers(generic["signing_secret"], content)
    _refused(client, engine, f"{ENDPOINT}/{pagerduty['id']}", content, headers)


# ---- administration ----


def test_bad_regex_in_a_matcher_is_422(client: TestClient, keys: Keys, engine: Engine) -> None:
    before = row_counts(engine)
    body = {
        "name": "bad",
        "kind": "alertmanager",
        "routes": [{"matchers": [{"label": "service", "op": "=~", "value": "data(base"}]}],
    }
    response = client.post("/api/v1/integrations", json=body, headers=keys.headers("admin"))
    assert_problem(response, 422)
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "kind": "nagios"},
        {"name": "", "kind": "generic"},
        {"name": "x", "kind": "generic", "routes": [{"matchers": [{"label": "a", "op": "~", "value": "b"}]}]},
        {"name": "x", "kind": "generic", "routes": [{"severity": "SEV7"}]},
        {"name": "x", "kind": "generic", "token": "rki_chosen"},
    ],
    ids=["kind", "name", "op", "severity", "extra"],
)
def test_invalid_integration_is_422(client: TestClient, keys: Keys, engine: Engine, body: dict[str, Any]) -> None:
    before = row_counts(engine)
    response = client.post("/api/v1/integrations", json=body, headers=keys.headers("admin"))
    assert response.status_code == 422, response.text
    assert row_counts(engine) == before


@pytest.mark.parametrize("role", ["read", "write"])
def test_non_admin_cannot_create_or_list(client: TestClient, keys: Keys, engine: Engine, role: str) -> None:
    before = row_counts(engine)
    response = client.post("/api/v1/integrations", json={"name": "x", "kind": "generic"}, headers=keys.headers(role))
    assert_problem(response, 403)
    assert row_counts(engine) == before
    assert_problem(client.get("/api/v1/integrations", headers=keys.headers(role)), 403)


def test_anonymous_cannot_create(client: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    response = client.post("/api/v1/integrations", json={"name": "x", "kind": "generic"}, headers={"Authorization": ""})
    assert_problem(response, 401)
    assert row_counts(engine) == before


def test_token_is_shown_once_and_listing_shows_no_secret(client: TestClient, keys: Keys) -> None:
    generic = make_integration(client, keys, "generic", name="generic")
    pagerduty = make_integration(client, keys, "pagerduty-events-v2", name="pd")
    alertmanager = make_integration(client, keys, "alertmanager", name="am")
    assert generic["signing_secret"] and pagerduty["signing_secret"] is None and alertmanager["signing_secret"] is None
    assert len({generic["token"], pagerduty["token"], alertmanager["token"]}) == 3
    assert generic["token_prefix"] == generic["token"][:10]
    assert {i["endpoint"] for i in (generic, pagerduty, alertmanager)} == {
        "/api/v1/inbound/generic",
        "/api/v1/inbound/pagerduty/v2/enqueue",
        "/api/v1/inbound/alertmanager",
    }

    response = client.get("/api/v1/integrations", headers=keys.headers("admin"))
    assert response.status_code == 200, response.text
    listed = response.json()
    assert [i["name"] for i in listed] == ["generic", "pd", "am"]
    text = response.text
    for created in (generic, pagerduty, alertmanager):
        assert created["token"] not in text
    assert generic["signing_secret"] not in text
    for item in listed:
        assert "token" not in item and "signing_secret" not in item and item["token_prefix"].startswith("rki_")


def test_received_alerts_need_an_admin_key_and_an_existing_integration(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "generic")
    path = f"/api/v1/integrations/{integration['id']}/alerts"
    assert_problem(client.get(path, headers={"Authorization": ""}), 401)
    assert_problem(client.get(path, headers=bearer(integration["token"])), 401)
    for role in ("read", "write"):  # the senders' bodies: admins only
        assert_problem(client.get(path, headers=keys.headers(role)), 403)
    admin = keys.headers("admin")
    assert_problem(client.get(f"/api/v1/integrations/{integration['id'] + 1000}/alerts", headers=admin), 404)
    assert client.get(path, headers=admin).json()["items"] == []

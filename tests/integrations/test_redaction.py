"""Credentials never reach the stored bodies: PagerDuty's routing key (the integration's token), tokens, passwords,
Authorization values; masked field by field in JSON, by pattern otherwise."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from riskops.integrations.redaction import masked_body
from tests.conftest import Keys
from tests.integrations.support import am_alert, am_body, bearer, make_integration, received

PAGERDUTY = "/api/v1/inbound/pagerduty/v2/enqueue"
NO_KEY = {"Authorization": ""}


def _trigger(routing_key: str, **details: Any) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": "db/primary",
        "payload": {"summary": "Primary down", "source": "db-1", "severity": "critical", "custom_details": details},
    }


def test_a_stored_pagerduty_event_keeps_no_routing_key(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "pagerduty-events-v2")
    token = integration["token"]
    event = _trigger(
        token, runbook="https://wiki.example/db?token=wiki-t0ken&page=2", api_token="tk-123", note="1% free"
    )
    for action in ("trigger", "resolve"):
        sent = client.post(PAGERDUTY, json={**event, "event_action": action}, headers=NO_KEY)
        assert sent.status_code == 202, sent.text
    rows = received(client, keys, integration["id"])
    assert [r["outcome"] for r in rows] == ["opened", "resolved"]
    for row in rows:
        assert token not in row["body"] and "wiki-t0ken" not in row["body"] and "tk-123" not in row["body"]
        stored = json.loads(row["body"])
        assert stored["routing_key"] == "***"
        assert stored["payload"]["custom_details"] == {
            "runbook": "https://wiki.example/db?token=***&page=2", "api_token": "***", "note": "1% free",
        }  # fmt: skip
        assert stored["dedup_key"] == "db/primary" and stored["payload"]["summary"] == "Primary down"


def test_a_rejected_body_is_masked_by_pattern_when_it_is_not_json(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "alertmanager")
    content = (
        '{"receiver": "riskops", "routing_key": "R0UT1NG", "password": "hunter2", '
        '"url": "http://am.example/?token=abc123", "header": "Authorization: Bearer eyJhbGciOi.payload.sig", '
        '"alerts": ['
    )
    response = client.post(
        "/api/v1/inbound/alertmanager",
        content=content.encode(),
        headers={**bearer(integration["token"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    [row] = received(client, keys, integration["id"])
    assert row["outcome"] == "rejected"
    for secret in ("R0UT1NG", "hunter2", "abc123", "eyJhbGciOi"):
        assert secret not in row["body"], row["body"]
    assert row["body"].startswith('{"receiver": "riskops", "routing_key": "***", "password": "***"')


def test_a_generic_alert_with_a_credential_in_its_text_is_masked(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "generic")
    alert = {
        "dedup_key": "backup",
        "title": "Backup failed",
        "details": f"curl -H 'Authorization: Bearer s3cr3t-bearer' https://x.example/?access_token=qwerty {keys.admin}",
        "labels": {"service": "backup"},
    }
    sent = client.post("/api/v1/inbound/generic", json=alert, headers=bearer(integration["token"]))
    assert sent.status_code == 202, sent.text
    [row] = received(client, keys, integration["id"])
    for secret in ("s3cr3t-bearer", "qwerty", keys.admin):
        assert secret not in row["body"]
    assert json.loads(row["body"])["labels"] == {"service": "backup"}


def test_a_body_without_credentials_is_kept_byte_for_byte(client: TestClient, keys: Keys) -> None:
    integration = make_integration(client, keys, "alertmanager")
    content = json.dumps(am_body([am_alert("fp-1")]), indent=3)
    sent = client.post(
        "/api/v1/inbound/alertmanager",
        content=content.encode(),
        headers={**bearer(integration["token"]), "Content-Type": "application/json"},
    )
    assert sent.status_code == 202, sent.text
    [row] = received(client, keys, integration["id"])
    assert row["body"] == content


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"routing_key": "abc"}, {"routing_key": "***"}),
        ({"Authorization": "Bearer x"}, {"Authorization": "***"}),
        ({"headers": {"X-Api-Key": "k", "X-Request-Id": "r"}}, {"headers": {"X-Api-Key": "***", "X-Request-Id": "r"}}),
        ({"client_secret": 1, "password": ["a"]}, {"client_secret": "***", "password": "***"}),
        ({"authorization": {"type": "Bearer", "credentials": "c"}}, {"authorization": "***"}),
        ({"token": None, "token_prefix": "rki_", "tokens": 3}, {"token": None, "token_prefix": "rki_", "tokens": 3}),
        ([{"link": "https://h/p?a=1&token=t&b=2"}], [{"link": "https://h/p?a=1&token=***&b=2"}]),
        ({"text": "key rko_abcdefghijklmnop used"}, {"text": "key *** used"}),
        ({"text": "Basic checks failed; auth=basic"}, {"text": "Basic checks failed; auth=***"}),
    ],
)
def test_json_is_masked_field_by_field(body: Any, expected: Any) -> None:
    assert json.loads(masked_body(json.dumps(body).encode())) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"routing_key": "abc", "x": 1', '{"routing_key": "***", "x": 1'),
        ('{"token":"a\\"b", "x": 1', '{"token":"***", "x": 1'),
        ("GET /hook?token=abc&x=1 HTTP/1.1", "GET /hook?token=***&x=1 HTTP/1.1"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==\r\n", "Authorization: *** ***\r\n"),
        ("password = hunter2", "password = ***"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_text_is_masked_by_pattern(text: str, expected: str) -> None:
    assert masked_body(text.encode()) == expected
    assert masked_body(expected.encode()) == expected  # masking twice changes nothing more

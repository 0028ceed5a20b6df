"""Managing subscriptions over HTTP: secrets, validation, pause/resume, test pings, secret rotation, Slack format."""

import base64
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.receiver import receiver
from tests.webhooks.support import (
    WEBHOOKS,
    at,
    create_risk,
    deliveries,
    subscribe,
    subscription,
    types,
    verify,
)


def test_secret_is_shown_once_and_never_listed(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> None:
    with receiver() as r:
        created = subscribe(client, keys, r.url, ["risk.*", "incident.*"], description="ops channel")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert created["status"] == "active" and created["format"] == "standard"
    assert created["event_types"] == ["risk.*", "incident.*"] and created["url"] == r.url
    assert at(created["created_at"]) == frozen_clock.now and created["created_by"] == "admin-key"

    second = subscribe(client, keys, r.url, ["*"])
    assert second["secret"] != secret

    listed = client.get(WEBHOOKS, headers=keys.headers("admin"))
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == [created["id"], second["id"]]
    assert all("secret" not in s and "previous_secret" not in s for s in listed.json())
    assert secret not in listed.text and second["secret"] not in listed.text
    one = client.get(f"{WEBHOOKS}/{created['id']}", headers=keys.headers("admin"))
    assert "secret" not in one.json() and secret not in one.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_types": ["nothing.*"]}, "body.event_types"),
        ({"event_types": ["risk.created", "risk.exploded"]}, "body.event_types"),
        ({"event_types": []}, "body.event_types"),
        ({"event_types": ["risk.*"], "format": "teams"}, "body.format"),
        ({"event_types": ["risk.*"], "secret": "whsec_mine"}, "body.secret"),
    ],
)
def test_invalid_subscription_is_refused(
    client: TestClient, keys: Keys, engine: Engine, body: dict[str, object], field: str
) -> None:
    before = row_counts(engine)
    with receiver() as r:
        response = client.post(WEBHOOKS, json={"url": r.url, **body}, headers=keys.headers("admin"))
    problem = assert_problem(response, 422, field)
    if body["event_types"] == ["nothing.*"]:
        assert "nothing.*" in problem["detail"]
    assert row_counts(engine) == before


@pytest.mark.parametrize("role", ["read", "write"])
def test_only_admins_manage_subscriptions(client: TestClient, keys: Keys, engine: Engine, role: str) -> None:
    existing = subscribe(client, keys, "http://127.0.0.1:9/hook", ["risk.*"])
    before = row_counts(engine)
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["risk.*"]}
    assert_problem(client.post(WEBHOOKS, json=body, headers=keys.headers(role)), 403)
    assert_problem(client.get(WEBHOOKS, headers=keys.headers(role)), 403)
    for action in ("pause", "test", "rotate-secret"):
        assert_problem(client.post(f"{WEBHOOKS}/{existing['id']}/{action}", json={}, headers=keys.headers(role)), 403)
    assert row_counts(engine) == before
    assert_problem(client.post(WEBHOOKS, json=body, headers={"Authorization": "Bearer not-a-key"}), 401)


def test_paused_subscription_queues_and_resume_delivers(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    admin = keys.headers("admin")
    with receiver() as r:
        sub = subscribe(client, keys, r.url, ["risk.*"])
        paused = client.post(f"{WEBHOOKS}/{sub['id']}/pause", headers=admin)
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        assert_problem(client.post(f"{WEBHOOKS}/{sub['id']}/pause", headers=admin), 409)

        create_risk(client, title="Queued while paused")
        create_risk(client, title="Also queued")
        frozen_clock.advance(timedelta(minutes=10))
        worker.tick()
        assert r.requests == []
        queued = deliveries(client, sub["id"])
        assert [d["status"] for d in queued] == ["pending", "pending"]
        assert all(d["attempts"] == 0 and d["attempt_log"] == [] for d in queued)

        resumed = client.post(f"{WEBHOOKS}/{sub['id']}/resume", headers=admin)
        assert resumed.status_code == 200 and resumed.json()["status"] == "active"
        assert_problem(client.post(f"{WEBHOOKS}/{sub['id']}/resume", headers=admin), 409)
        worker.tick()
        assert sorted(verify(sub["secret"], q)["data"]["title"] for q in r.requests) == [
            "Also queued",
            "Queued while paused",
        ]
        assert [d["status"] for d in deliveries(client, sub["id"])] == ["succeeded", "succeeded"]


def test_test_ping_goes_to_its_subscription_alone(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as pinged, receiver() as everything:
        sub = subscribe(client, keys, pinged.url, ["risk.created"])
        catch_all = subscribe(client, keys, everything.url, ["*"])
        sent = client.post(f"{WEBHOOKS}/{sub['id']}/test", headers=keys.headers("admin"))
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["message_id"]
        create_risk(client)  # something the catch-all does get, so its silence about the ping means something
        worker.tick()

        ping = next(q for q in pinged.requests if q.headers["webhook-id"] == message_id)
        body = verify(sub["secret"], ping)
        assert body["type"] == "webhook.test"
        assert body["data"] == {"message": "ping from riskops", "subscription": sub["id"]}
        assert sorted(types(pinged.requests)) == ["risk.created", "webhook.test"]

        assert "risk.created" in types(everything.requests)
        assert "webhook.test" not in types(everything.requests)
        assert message_id not in everything.ids()
        assert all(d["event_type"] != "webhook.test" for d in deliveries(client, catch_all["id"]))
        listed = [d for d in deliveries(client, sub["id"]) if d["event_type"] == "webhook.test"]
        assert [(d["message_id"], d["status"]) for d in listed] == [(message_id, "succeeded")]

    assert_problem(client.post(f"{WEBHOOKS}/999999/test", headers=keys.headers("admin")), 404)


def _signatures(header: str) -> list[str]:
    return header.split(" ")


def test_rotated_secret_signs_beside_the_old_one_for_the_grace_period(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r:
        sub = subscribe(client, keys, r.url, ["risk.created"])
        old = sub["secret"]
        rotated = client.post(
            f"{WEBHOOKS}/{sub['id']}/rotate-secret", json={"grace_minutes": 60}, headers=keys.headers("admin")
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_") and new != old
        assert at(rotated.json()["previous_secret_expires_at"]) == frozen_clock.now + timedelta(minutes=60)
        listed = client.get(WEBHOOKS, headers=keys.headers("admin")).text
        assert new not in listed and old not in listed

        create_risk(client, title="During the grace period")
        worker.tick()
        (during,) = r.requests
        signatures = _signatures(during.headers["webhook-signature"])
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        assert verify(new, during)["data"]["title"] == "During the grace period"
        assert verify(old, during)["data"]["title"] == "During the grace period"
        # Each secret made exactly one of the two signatures.
        for secret in (new, old):
            matching = [
                s for s in signatures if _verifies(secret, during.body, {**during.headers, "webhook-signature": s})
            ]
            assert len(matching) == 1

        frozen_clock.advance(timedelta(minutes=59))
        create_risk(client, title="Just before the end")
        worker.tick()
        assert len(_signatures(r.requests[-1].headers["webhook-signature"])) == 2

        frozen_clock.advance(timedelta(minutes=2))
        create_risk(client, title="After the grace period")
        worker.tick()
        after = r.requests[-1]
        assert len(r.requests) == 3
        assert len(_signatures(after.headers["webhook-signature"])) == 1
        assert verify(new, after)["data"]["title"] == "After the grace period"
        with pytest.raises(WebhookVerificationError):
            verify(old, after)


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_slack_format_sends_text_naming_the_event(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r:
        sub = subscribe(client, keys, r.url, ["risk.created"], format="slack")
        assert sub["format"] == "slack"
        risk = create_risk(client, title="Payroll supplier insolvent")
        client.post(f"{WEBHOOKS}/{sub['id']}/test", headers=keys.headers("admin"))
        worker.tick()

        assert len(r.requests) == 2
        by_id = {q.headers["webhook-id"]: q for q in r.requests}
        texts = []
        for request in by_id.values():
            assert request.headers["content-type"] == "application/json"
            body = json.loads(request.body)
            assert set(body) == {"text"}
            assert verify(sub["secret"], request) == body  # still signed
            texts.append(body["text"])
        created = next(t for t in texts if "risk.created" in t)
        assert risk["reference"] in created and "Payroll supplier insolvent" in created
        ping = next(t for t in texts if "webhook.test" in t)
        assert "ping from riskops" in ping
        assert [d["status"] for d in deliveries(client, sub["id"])] == ["succeeded", "succeeded"]
        assert subscription(client, keys, sub["id"])["format"] == "slack"

"""Calendar feed tokens: created, listed and revoked by admins; they open the feed and nothing else, and API keys
no longer open the feed."""

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body, row_counts

TOKENS = "/api/v1/register/feed-tokens"
FEED = "/api/v1/register/calendar.ics"
NO_KEY = {"Authorization": ""}


def _risk(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _token(client: TestClient, keys: Keys, **body: Any) -> dict[str, Any]:
    response = client.post(TOKENS, json={"name": "alice's calendar", **body}, headers=keys.headers("admin"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _feed(client: TestClient, token: str, **params: str) -> Any:
    return client.get(FEED, params={"token": token, **params}, headers=NO_KEY)


def _events(feed: Any) -> int:
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    return int(feed.text.count("BEGIN:VEVENT"))


def test_token_is_shown_once_stored_hashed_and_opens_the_feed(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    _risk(client, owner="alice")
    _risk(client, owner="bob")
    created = _token(client, keys)
    token = created["token"]
    assert token.startswith("rkf_") and len(token) > 40
    assert created["prefix"] == token[:10] and created["owner"] is None
    assert created["created_by"] == "admin-key" and created["revoked_at"] is None and created["last_used_at"] is None
    assert created["path"] == f"{FEED}?token={token}"
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM feed_token")).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest()

    assert _events(_feed(client, token)) == 2
    assert _events(client.get(created["path"], headers=NO_KEY)) == 2
    assert _events(_feed(client, token, owner="alice")) == 1  # a token for everyone may filter by owner

    listed = client.get(TOKENS, headers=keys.headers("admin"))
    assert listed.status_code == 200 and token not in listed.text
    [item] = listed.json()
    assert item["prefix"] == token[:10] and "token" not in item and "token_hash" not in item
    assert datetime.fromisoformat(item["last_used_at"]) == frozen_clock.now


def test_last_use_is_recorded_at_most_once_a_minute(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> None:
    token = _token(client, keys)["token"]

    def last_used() -> str | None:
        [item] = client.get(TOKENS, headers=keys.headers("admin")).json()
        value: str | None = item["last_used_at"]
        return value

    _events(_feed(client, token))
    first = last_used()
    assert first is not None
    frozen_clock.advance(timedelta(seconds=30))
    _events(_feed(client, token))
    assert last_used() == first
    frozen_clock.advance(timedelta(seconds=31))
    _events(_feed(client, token))
    assert last_used() != first


def test_a_token_for_one_owner_shows_only_that_owners_risks(
    client: TestClient, keys: Keys, frozen_clock: FrozenClock
) -> None:
    _risk(client, owner="alice")
    _risk(client, owner="alice", title="Second")
    _risk(client, owner="bob")
    token = _token(client, keys, owner=" alice ")
    assert token["owner"] == "alice"
    assert _events(_feed(client, token["token"])) == 2
    assert _events(_feed(client, token["token"], owner="alice")) == 2
    assert_problem(_feed(client, token["token"], owner="bob"), 403)


def test_api_keys_no_longer_open_the_feed(client: TestClient, keys: Keys) -> None:
    for role in ("read", "write", "admin"):
        secret = getattr(keys, role)
        assert_problem(_feed(client, secret), 401)  # in the URL, as calendar apps used them
        assert_problem(client.get(FEED, headers=keys.headers(role)), 401)  # nor as a header
    problem = assert_problem(client.get(FEED, headers=NO_KEY), 401)
    assert "feed token" in problem["detail"]
    assert_problem(_feed(client, "rkf_not-a-real-token"), 401)


def _api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every API endpoint the OpenAPI document lists, its path parameters filled in."""
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method in operations
    ]


def test_a_feed_token_opens_nothing_else(client: TestClient, keys: Keys, engine: Engine) -> None:
    _risk(client)
    token = _token(client, keys)["token"]
    routes = _api_routes(client)
    assert ("GET", FEED) in routes and ("POST", TOKENS) in routes and len(routes) > 50
    before = row_counts(engine)
    for method, path in routes:
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        as_bearer = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401, (method, path, as_bearer.status_code, as_bearer.text)
        if (method, path) == ("GET", FEED):
            continue
        in_url = client.request(method, path, params={"token": token}, json=body, headers=NO_KEY)
        assert in_url.status_code == 401, (method, path, in_url.status_code, in_url.text)
    assert row_counts(engine) == before
    problem = assert_problem(client.get("/api/v1/risks", headers={"Authorization": f"Bearer {token}"}), 401)
    assert "feed token" in problem["detail"]


@pytest.mark.parametrize("role", ["read", "write"])
def test_only_admins_manage_feed_tokens(client: TestClient, keys: Keys, engine: Engine, role: str) -> None:
    existing = _token(client, keys)
    before = row_counts(engine)
    headers = keys.headers(role)
    assert_problem(client.post(TOKENS, json={"name": "mine"}, headers=headers), 403)
    assert_problem(client.get(TOKENS, headers=headers), 403)
    assert_problem(client.delete(f"{TOKENS}/{existing['id']}", headers=headers), 403)
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "   "}, {"name": "x", "owner": ""}, {"name": "x", "role": "admin"},
     {"name": "x" * 101}],
)  # fmt: skip
def test_invalid_token_request_is_refused(client: TestClient, keys: Keys, engine: Engine, body: dict[str, Any]) -> None:
    before = row_counts(engine)
    assert_problem(client.post(TOKENS, json=body, headers=keys.headers("admin")), 422)
    assert row_counts(engine) == before


def test_revoked_token_stops_at_once_and_both_are_in_the_history(client: TestClient, keys: Keys) -> None:
    admin = keys.headers("admin")
    created = _token(client, keys, owner="alice")
    _events(_feed(client, created["token"]))
    revoked = client.delete(f"{TOKENS}/{created['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_problem(_feed(client, created["token"]), 401)
    assert_problem(client.delete(f"{TOKENS}/{created['id']}", headers=admin), 409)
    assert_problem(client.delete(f"{TOKENS}/9999", headers=admin), 404)

    history = client.get("/api/v1/audit", params={"entity_type": "feed_token", "entity_id": str(created["id"])})
    entries = history.json()["items"]
    assert [(e["action"], e["actor"]) for e in entries] == [("created", "admin-key"), ("revoked", "admin-key")]
    assert entries[0]["changes"]["owner"] == {"old": None, "new": "alice"}
    assert created["token"] not in history.text

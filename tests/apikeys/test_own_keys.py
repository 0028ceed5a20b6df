"""A user's own API keys: made, listed and revoked by the signed-in user only, with a role at most theirs; a key
that works only while its user may use it, at once (no cache hides a change), and a history that names the user."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.apikeys import service
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.apikeys.service import ACTOR_MAX, acting_name
from riskops.users import service as users
from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body
from tests.users import conftest as user_fixtures
from tests.users.conftest import add_user, sign_in

OWN = "/api/v1/me/api-keys"
console = user_fixtures.console  # a browser without a key: cookies kept, redirects shown


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _own_key(console: TestClient, csrf: str, name: str = "ci-bot", role: str = "write") -> dict[str, Any]:
    created = console.post(OWN, json={"name": name, "role": role}, headers={users.CSRF_HEADER: csrf})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def test_a_signed_in_user_makes_lists_and_revokes_their_own_keys(console: TestClient, engine: Engine) -> None:
    ann = add_user(engine, "ann@example.org", Role.write)
    other = add_user(engine, "bo@example.org", Role.admin)
    with Session(engine) as session:
        theirs, _ = service.create_own_key(session, other, ApiKeyCreate(name="bo's", role=Role.admin))
        theirs_id = theirs.id
        session.commit()
    csrf = sign_in(console, "ann@example.org")
    created = _own_key(console, csrf)
    assert created["secret"].startswith("rko_") and created["owner"] == "ann@example.org"
    assert created["user_id"] == ann and created["created_by"] == "ann@example.org" and created["role"] == "write"
    listed = console.get(OWN).json()
    assert [(k["id"], k["owner"]) for k in listed] == [(created["id"], "ann@example.org")]  # not bo's
    assert all("secret" not in k and "key_hash" not in k for k in listed)
    csrf_header = {users.CSRF_HEADER: csrf}
    assert_problem(console.delete(f"{OWN}/{theirs_id}", headers=csrf_header), 404)  # another's: as if none
    assert_problem(console.delete(f"{OWN}/99999", headers=csrf_header), 404)
    assert console.get("/api/v1/risks", headers=_bearer(created["secret"])).status_code == 200
    revoked = console.delete(f"{OWN}/{created['id']}", headers=csrf_header)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_problem(console.get("/api/v1/risks", headers=_bearer(created["secret"])), 401)
    assert_problem(console.delete(f"{OWN}/{created['id']}", headers=csrf_header), 409)
    with Session(engine) as session:  # bo's key was left alone
        assert next(k for k in service.list_keys(session) if k.id == theirs_id).revoked_at is None


def test_a_key_may_have_at_most_the_users_role(console: TestClient, engine: Engine) -> None:
    add_user(engine, "rea@example.org", Role.read)
    csrf = sign_in(console, "rea@example.org")
    higher = console.post(OWN, json={"name": "x", "role": "write"}, headers={users.CSRF_HEADER: csrf})
    body = assert_problem(higher, 403, "body.role")
    assert "at most your own role ('read')" in body["detail"]
    assert console.get(OWN).json() == []
    assert_problem(console.post(OWN, json={"name": "", "role": "read"}, headers={users.CSRF_HEADER: csrf}), 422)
    assert_problem(console.post(OWN, json={"name": "x", "role": "read"}), 403)  # no CSRF token: nothing made
    assert _own_key(console, csrf, role="read")["role"] == "read"


def test_own_keys_are_managed_with_a_session_only(console: TestClient, engine: Engine, keys: Keys) -> None:
    assert_problem(console.get(OWN), 401)
    for role in ("read", "admin"):
        body = assert_problem(console.get(OWN, headers=keys.headers(role)), 403)
        assert "signed in" in body["detail"]
    add_user(engine, "cy@example.org", Role.write)
    secret = _own_key(console, sign_in(console, "cy@example.org"))["secret"]
    # Their own key may not breed more keys (it wins over the cookie the client also holds).
    assert_problem(console.post(OWN, json={"name": "more", "role": "read"}, headers=_bearer(secret)), 403)


def test_the_key_stops_at_once_when_its_user_is_disabled_or_demoted(
    console: TestClient, engine: Engine, keys: Keys
) -> None:
    """The app caches keys for a few seconds (RISKOPS_AUTH_CACHE_SECONDS): a user's key is checked every time."""
    assert console.app.state.principals.ttl > 0  # type: ignore[attr-defined]
    ann = add_user(engine, "ann@example.org", Role.write)
    secret = _own_key(console, sign_in(console, "ann@example.org"), role="write")["secret"]
    admin = keys.headers("admin")
    assert console.get("/api/v1/risks", headers=_bearer(secret)).status_code == 200  # looked up, would be cached
    assert console.patch(f"/api/v1/users/{ann}", json={"active": False}, headers=admin).status_code == 200
    body = assert_problem(console.get("/api/v1/risks", headers=_bearer(secret)), 401)
    assert "disabled" in body["detail"]
    assert console.patch(f"/api/v1/users/{ann}", json={"active": True}, headers=admin).status_code == 200
    assert console.get("/api/v1/risks", headers=_bearer(secret)).status_code == 200  # works again
    assert console.patch(f"/api/v1/users/{ann}", json={"role": "read"}, headers=admin).status_code == 200
    assert_problem(console.get("/api/v1/risks", headers=_bearer(secret)), 401)  # a write key of a read user
    assert console.patch(f"/api/v1/users/{ann}", json={"role": "admin"}, headers=admin).status_code == 200
    listed = console.post("/api/v1/apikeys", json={"name": "x", "role": "read"}, headers=_bearer(secret))
    assert_problem(listed, 403)  # the key keeps its own role (write), whatever the user's


def test_a_change_made_with_a_users_key_names_the_user_and_the_key(
    console: TestClient, engine: Engine, keys: Keys
) -> None:
    ann = add_user(engine, "ann@example.org", Role.write)
    created = _own_key(console, sign_in(console, "ann@example.org"))
    risk = console.post("/api/v1/risks", json=risk_body(), headers=_bearer(created["secret"]))
    assert risk.status_code == 201, risk.text
    audit = console.get("/api/v1/audit", params={"entity_type": "risk"}, headers=keys.headers("read")).json()
    assert [e["actor"] for e in audit["items"]] == ["ann@example.org (key ci-bot)"]
    made = console.get("/api/v1/audit", params={"entity_type": "api_key"}, headers=keys.headers("read")).json()
    assert [(e["action"], e["actor"]) for e in made["items"]][-1] == ("created", "ann@example.org")
    everything = console.get("/api/v1/apikeys", headers=keys.headers("admin")).json()
    owners = {k["name"]: (k["owner"], k["user_id"]) for k in everything}
    assert owners["ci-bot"] == ("ann@example.org", ann) and owners["admin-key"] == (None, None)
    assert owners["ci-bot"] and next(k for k in everything if k["name"] == "ci-bot")["last_used_at"] is not None
    revoked = console.delete(f"/api/v1/apikeys/{created['id']}", headers=keys.headers("admin")).json()
    assert revoked["owner"] == "ann@example.org"  # an admin may revoke anyone's key
    assert_problem(console.get("/api/v1/risks", headers=_bearer(created["secret"])), 401)


def test_the_history_name_fits_its_column() -> None:
    assert acting_name("ann@example.org", "ci-bot") == "ann@example.org (key ci-bot)"
    long_name = acting_name("a" * 100 + "@example.org", "k" * 100)
    assert len(long_name) == ACTOR_MAX and long_name.endswith("k…)")
    assert acting_name("a" * 188 + "@example.org", "ci-bot") == "a" * 188 + "@example.org"


def test_the_openapi_document_describes_the_own_key_routes(console: TestClient) -> None:
    paths = console.get("/openapi.json").json()["paths"]
    assert set(paths[OWN]) == {"get", "post"} and set(paths[f"{OWN}/{{key_id}}"]) == {"delete"}
    created = paths[OWN]["post"]["responses"]
    assert "201" in created and "API key rather than a session" in created["403"]["description"]
    assert "another's too" in paths[f"{OWN}/{{key_id}}"]["delete"]["responses"]["404"]["description"]

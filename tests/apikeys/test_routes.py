"""API keys: roles on every endpoint, secrets shown once and stored hashed."""

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.conftest import Keys
from tests.helpers import assert_problem, risk_body


def test_health_checks_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz", headers={"Authorization": ""}).json() == {"status": "ok"}
    ready = client.get("/readyz", headers={"Authorization": ""})
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/risks"), ("GET", "/api/v1/risks/1"), ("POST", "/api/v1/risks"),
     ("GET", "/api/v1/matrices/current"), ("GET", "/api/v1/audit"), ("GET", "/api/v1/apikeys")],
)  # fmt: skip
def test_missing_or_wrong_key_is_401(client: TestClient, method: str, path: str) -> None:
    body = assert_problem(client.request(method, path, headers={"Authorization": ""}), 401)
    assert "API key" in body["detail"]
    wrong = client.request(method, path, headers={"Authorization": "Bearer rko_not-a-key"})
    assert_problem(wrong, 401)
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_roles_read_write_admin(client: TestClient, keys: Keys) -> None:
    assert client.get("/api/v1/risks", headers=keys.headers("read")).status_code == 200
    assert_problem(client.post("/api/v1/risks", json=risk_body(), headers=keys.headers("read")), 403)
    assert client.post("/api/v1/risks", json=risk_body(), headers=keys.headers("write")).status_code == 201
    assert_problem(client.get("/api/v1/apikeys", headers=keys.headers("write")), 403)
    assert client.get("/api/v1/apikeys", headers=keys.headers("admin")).status_code == 200


def test_secret_is_shown_once_and_stored_hashed(client: TestClient, keys: Keys, engine: Engine) -> None:
    admin = keys.headers("admin")
    created = client.post("/api/v1/apikeys", json={"name": "carol", "role": "read"}, headers=admin)
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("rko_") and len(secret) > 40
    listed = client.get("/api/v1/apikeys", headers=admin).json()
    assert all("secret" not in k and "key_hash" not in k for k in listed)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_key WHERE name = 'carol'")).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert client.get("/api/v1/risks", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_revoked_key_stops_working_and_revocation_is_audited(client: TestClient, keys: Keys) -> None:
    admin = keys.headers("admin")
    created = client.post("/api/v1/apikeys", json={"name": "dave", "role": "write"}, headers=admin).json()
    assert client.delete(f"/api/v1/apikeys/{created['id']}", headers=admin).json()["revoked_at"]
    assert_problem(client.get("/api/v1/risks", headers={"Authorization": f"Bearer {created['secret']}"}), 401)
    assert_problem(client.delete(f"/api/v1/apikeys/{created['id']}", headers=admin), 409)
    assert_problem(client.delete("/api/v1/apikeys/9999", headers=admin), 404)
    audit = client.get("/api/v1/audit", params={"entity_type": "api_key", "entity_id": str(created["id"])}).json()
    assert [(e["action"], e["actor"]) for e in audit["items"]] == [("created", "admin-key"), ("revoked", "admin-key")]


def test_bad_key_requests(client: TestClient, keys: Keys) -> None:
    admin = keys.headers("admin")
    assert_problem(client.post("/api/v1/apikeys", json={"name": "x", "role": "root"}, headers=admin), 422, "body.role")
    assert_problem(client.post("/api/v1/apikeys", json={"name": "", "role": "read"}, headers=admin), 422, "body.name")


def test_openapi_documents_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "/api/v1/risks/{risk_ref}/assessments" in spec["paths"]
    assert client.get("/docs").status_code == 200

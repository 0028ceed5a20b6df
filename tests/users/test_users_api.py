"""The admin API for users: create, list, change, issue a set-password link; every change in the history."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.risks.matrices import service as matrices
from tests.conftest import Keys
from tests.helpers import assert_problem


def test_an_admin_creates_lists_and_changes_users_and_the_history_says_who(client: TestClient, keys: Keys) -> None:
    admin = keys.headers("admin")
    body = {"email": "Ana.Lima@Example.ORG", "role": "write", "display_name": "Ana", "time_zone": "America/Sao_Paulo"}
    created = client.post("/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "ana.lima@example.org" and user["role"] == "write" and user["language"] == "en"
    assert user["active"] is True and user["has_password"] is False
    assert "password_hash" not in user and "failed_sign_ins" not in user
    changed = client.patch(
        f"/api/v1/users/{user['id']}", json={"role": "admin", "language": "zh-CN", "active": False}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["role"], changed.json()["language"], changed.json()["active"]) == ("admin", "zh-CN", False)
    listed = client.get("/api/v1/users", headers=admin).json()
    assert [u["email"] for u in listed] == ["ana.lima@example.org"]
    history = client.get("/api/v1/audit", params={"entity_type": "user"}).json()["items"]
    assert [(e["action"], e["actor"]) for e in history] == [("created", "admin-key"), ("updated", "admin-key")]
    assert history[1]["changes"]["role"] == {"old": "write", "new": "admin"}


def test_the_same_address_in_another_case_is_refused(client: TestClient, keys: Keys) -> None:
    admin = keys.headers("admin")
    assert (
        client.post("/api/v1/users", json={"email": "bo@example.org", "role": "read"}, headers=admin).status_code == 201
    )
    again = client.post("/api/v1/users", json={"email": "BO@example.org", "role": "read"}, headers=admin)
    assert_problem(again, 409)


def test_bad_fields_are_named(client: TestClient, keys: Keys) -> None:
    admin = keys.headers("admin")
    for body, field in (
        ({"email": "not-an-address", "role": "read"}, "body.email"),
        ({"email": "a" * 60 + "@" + "b" * 60 + "." + "c" * 50 + "." + "d" * 50 + ".org", "role": "read"}, "body.email"),
        ({"email": "x@example.org", "role": "owner"}, "body.role"),
        ({"email": "x@example.org", "role": "read", "time_zone": "Mars/Olympus"}, "body.time_zone"),
        ({"email": "x@example.org", "role": "read", "language": "fr"}, "body.language"),
    ):
        assert_problem(client.post("/api/v1/users", json=body, headers=admin), 422, field)
    user = client.post("/api/v1/users", json={"email": "x@example.org", "role": "read"}, headers=admin).json()
    assert_problem(client.patch(f"/api/v1/users/{user['id']}", json={"role": None}, headers=admin), 422, "body.role")
    assert_problem(client.patch(f"/api/v1/users/{user['id']}", json={"x": 1}, headers=admin), 422, "body.x")
    assert_problem(client.patch("/api/v1/users/99999", json={"active": False}, headers=admin), 404)


def test_only_admins_manage_users(client: TestClient, keys: Keys) -> None:
    assert_problem(client.get("/api/v1/users", headers=keys.headers("write")), 403)
    assert_problem(client.post("/api/v1/users", json={"email": "a@example.org", "role": "read"}), 403)


def test_a_password_link_is_shown_once_and_sets_the_password(client: TestClient, keys: Keys, engine: Engine) -> None:
    admin = keys.headers("admin")
    user = client.post("/api/v1/users", json={"email": "cy@example.org", "role": "read"}, headers=admin).json()
    link = client.post(f"/api/v1/users/{user['id']}/password-link", headers=admin)
    assert link.status_code == 201, link.text
    token = link.json()["token"]
    assert link.json()["url"].endswith(f"/console/set-password?token={token}")
    form = client.get("/console/set-password", params={"token": token})
    assert form.status_code == 200 and f'value="{token}"' in form.text
    short = client.post("/console/set-password", data={"token": token, "password": "short"}, follow_redirects=False)
    assert_problem(short, 422, "body.password")
    done = client.post(
        "/console/set-password", data={"token": token, "password": "a long enough secret"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/sign-in"
    again = client.post(
        "/console/set-password", data={"token": token, "password": "another long secret"}, follow_redirects=False
    )
    assert_problem(again, 401)  # one time only
    assert client.get("/api/v1/users", headers=admin).json()[0]["has_password"] is True
    history = client.get("/api/v1/audit", params={"entity_type": "user"}).json()["items"]
    assert [e["action"] for e in history] == ["created", "password link issued", "password set"]
    assert token not in str(history) and "a long enough secret" not in str(history)


def test_a_long_address_makes_a_display_name_that_fits_and_may_publish_a_matrix(
    client: TestClient, keys: Keys, engine: Engine
) -> None:
    email = f"{'a' * 120}@{'b' * 60}.example.org"  # within the 200 characters of an address
    made = client.post("/api/v1/users", json={"email": email, "role": "admin"}, headers=keys.headers("admin"))
    assert made.status_code == 201, made.text
    assert made.json()["display_name"] == "a" * 100
    with Session(engine) as session:  # the history's "who" of this admin is the address: a matrix takes it
        spec = matrices.current(session).parsed()
        matrix = matrices.publish(session, spec, actor=email)
        session.commit()
        assert matrix.published_by == email

"""Signing in and out over HTTP: the cookie's flags, lockout, sessions ended by disabling or a new password, CSRF,
and API keys as before."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from riskops.apikeys.models import Role
from riskops.app import create_app
from riskops.users import service as users
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body
from tests.users.conftest import CONSOLE_SETTINGS, PASSWORD, add_user, sign_in


def test_sign_in_sets_a_guarded_cookie_and_sign_out_ends_the_session(console: TestClient, engine: Engine) -> None:
    add_user(engine, "dee@example.org")
    answer = console.post("/console/sign-in", data={"email": "DEE@example.org", "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{users.SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags and "secure" not in flags  # plain http here
    token = answer.cookies[users.SESSION_COOKIE]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM user_session")).scalars().all()
    assert stored == [users.token_hash(token)]  # the row holds the hash, never the token
    me = console.get("/console/session").json()
    assert me["email"] == "dee@example.org" and me["role"] == "write"
    out = console.post("/console/sign-out", data={users.CSRF_FIELD: me["csrf_token"]})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM user_session")).scalar_one() == 0
    console.cookies.set(users.SESSION_COOKIE, token)  # the old cookie, kept by a careless browser
    assert_problem(console.get("/api/v1/risks"), 401)


def test_the_cookie_is_secure_over_https_or_behind_an_https_public_url(engine: Engine) -> None:
    add_user(engine, "eve@example.org")
    form = {"email": "eve@example.org", "password": PASSWORD}
    with TestClient(create_app(CONSOLE_SETTINGS, engine=engine), base_url="https://testserver") as browser:
        answer = browser.post("/console/sign-in", data=form, follow_redirects=False)
    assert "secure" in answer.headers["set-cookie"].lower()
    behind = CONSOLE_SETTINGS.model_copy(update={"public_url": "https://risk.example.org"})
    with TestClient(create_app(behind, engine=engine)) as browser:
        answer = browser.post("/console/sign-in", data=form, follow_redirects=False)
    assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(console: TestClient, engine: Engine) -> None:
    add_user(engine, "fay@example.org")
    wrong = console.post("/console/sign-in", data={"email": "fay@example.org", "password": "not the password"})
    unknown = console.post("/console/sign-in", data={"email": "nobody@example.org", "password": "not the password"})
    assert assert_problem(wrong, 401)["detail"] == assert_problem(unknown, 401)["detail"] == users.SIGN_IN_REFUSED
    assert "set-cookie" not in wrong.headers
    assert_problem(console.post("/console/sign-in", data={"email": "fay@example.org"}), 422, "body.password")
    too_long = {"email": "fay@example.org", "password": "x" * 10_000}
    assert_problem(console.post("/console/sign-in", data=too_long), 422, "body.password")


def test_repeated_failures_lock_the_account_until_the_window_ends(
    console: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    add_user(engine, "gus@example.org")
    wrong = {"email": "gus@example.org", "password": "not the password"}
    right = {"email": "gus@example.org", "password": PASSWORD}
    for _ in range(CONSOLE_SETTINGS.sign_in_max_failures):
        assert_problem(console.post("/console/sign-in", data=wrong), 401)
    locked = console.post("/console/sign-in", data=right)
    assert assert_problem(locked, 401)["detail"] == users.SIGN_IN_REFUSED  # the right password, refused: locked
    with engine.connect() as conn:  # in the database, so that every instance agrees
        until = conn.execute(text("SELECT locked_until FROM app_user")).scalar_one()
    assert until is not None
    frozen_clock.advance(timedelta(minutes=CONSOLE_SETTINGS.sign_in_lockout_minutes) - timedelta(seconds=1))
    assert_problem(console.post("/console/sign-in", data=right), 401)
    frozen_clock.advance(timedelta(seconds=1))
    assert console.post("/console/sign-in", data=right).status_code == 303


def test_failures_spread_beyond_the_window_do_not_lock(
    console: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    add_user(engine, "hal@example.org")
    wrong = {"email": "hal@example.org", "password": "not the password"}
    for _ in range(CONSOLE_SETTINGS.sign_in_max_failures - 1):
        assert_problem(console.post("/console/sign-in", data=wrong), 401)
    frozen_clock.advance(timedelta(minutes=CONSOLE_SETTINGS.sign_in_lockout_minutes))
    assert_problem(console.post("/console/sign-in", data=wrong), 401)  # the first of a new window
    assert console.post("/console/sign-in", data={"email": "hal@example.org", "password": PASSWORD}).status_code == 303


def test_disabling_a_user_ends_their_session_at_once(console: TestClient, engine: Engine, keys: Keys) -> None:
    user_id = add_user(engine, "ivy@example.org")
    sign_in(console, "ivy@example.org")
    assert console.get("/api/v1/risks").status_code == 200
    admin = keys.headers("admin")
    assert console.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=admin).status_code == 200
    assert_problem(console.get("/api/v1/risks"), 401)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM user_session")).scalar_one() == 0
    refused = console.post("/console/sign-in", data={"email": "ivy@example.org", "password": PASSWORD})
    assert_problem(refused, 401)


def test_a_new_password_ends_the_other_sessions(console: TestClient, engine: Engine) -> None:
    user_id = add_user(engine, "jo@example.org")
    sign_in(console, "jo@example.org")
    with Session(engine) as session:
        users.set_password(session, users.get_user(session, user_id), "a brand new password", actor="test")
        session.commit()
    assert_problem(console.get("/api/v1/risks"), 401)
    sign_in(console, "jo@example.org", "a brand new password")
    assert console.get("/api/v1/risks").status_code == 200


def test_a_session_idle_too_long_ends(console: TestClient, engine: Engine, frozen_clock: FrozenClock) -> None:
    add_user(engine, "kim@example.org")
    sign_in(console, "kim@example.org")
    frozen_clock.advance(timedelta(minutes=CONSOLE_SETTINGS.session_idle_minutes - 1))
    assert console.get("/api/v1/risks").status_code == 200  # seen: the idle time starts again
    frozen_clock.advance(timedelta(minutes=CONSOLE_SETTINGS.session_idle_minutes - 1))
    assert console.get("/api/v1/risks").status_code == 200
    frozen_clock.advance(timedelta(minutes=CONSOLE_SETTINGS.session_idle_minutes))
    assert_problem(console.get("/api/v1/risks"), 401)


def test_a_session_in_use_still_ends_at_its_absolute_lifetime(
    console: TestClient, engine: Engine, frozen_clock: FrozenClock
) -> None:
    add_user(engine, "lea@example.org")
    sign_in(console, "lea@example.org")
    signed_in_at = frozen_clock.now
    end = signed_in_at + timedelta(hours=CONSOLE_SETTINGS.session_absolute_hours)
    step = timedelta(minutes=CONSOLE_SETTINGS.session_idle_minutes - 1)
    while frozen_clock.now + step < end:
        frozen_clock.advance(step)
        assert console.get("/api/v1/risks").status_code == 200, frozen_clock.now
    frozen_clock.advance(end - frozen_clock.now)
    assert_problem(console.get("/api/v1/risks"), 401)


def test_a_change_by_cookie_needs_the_csrf_token(console: TestClient, engine: Engine) -> None:
    add_user(engine, "lu@example.org")
    csrf = sign_in(console, "lu@example.org")
    body = risk_body(title="Flood in the basement")
    assert_problem(console.post("/api/v1/risks", json=body), 403)
    assert_problem(console.post("/api/v1/risks", json=body, headers={users.CSRF_HEADER: "wrong"}), 403)
    assert_problem(console.post("/console/sign-out", data={users.CSRF_FIELD: "wrong"}), 403)
    created = console.post("/api/v1/risks", json=body, headers={users.CSRF_HEADER: csrf})
    assert created.status_code == 201, created.text
    history = console.get(f"/api/v1/audit?entity_type=risk&entity_id={created.json()['id']}").json()["items"]
    assert history[0]["actor"] == "lu@example.org"  # the signed-in user is "who"


def test_a_read_user_is_refused_changes(console: TestClient, engine: Engine) -> None:
    add_user(engine, "mo@example.org", role=Role.read)
    csrf = sign_in(console, "mo@example.org")
    assert console.get("/api/v1/risks").status_code == 200
    refused = console.post("/api/v1/risks", json=risk_body(), headers={users.CSRF_HEADER: csrf})
    assert_problem(refused, 403)


def test_api_keys_work_as_before_and_need_no_csrf(console: TestClient, engine: Engine, keys: Keys) -> None:
    add_user(engine, "ned@example.org", role=Role.read)
    sign_in(console, "ned@example.org")  # a session cookie is there too: the key wins
    created = console.post("/api/v1/risks", json=risk_body(), headers=keys.headers("write"))
    assert created.status_code == 201, created.text
    history = console.get(f"/api/v1/audit?entity_type=risk&entity_id={created.json()['id']}").json()["items"]
    assert history[0]["actor"] == "write-key"
    console.cookies.clear()
    assert_problem(console.post("/api/v1/risks", json=risk_body(), headers={"Authorization": "Bearer rko_nope"}), 401)
    assert_problem(console.get("/api/v1/risks"), 401)

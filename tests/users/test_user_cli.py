"""`riskops user create` as a real process, and a real `riskops serve` whose log never holds a password or token."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import text

from riskops.db import make_engine
from riskops.users import service as users
from tests.helpers import running_service

RISKOPS = [sys.executable, "-m", "riskops"]
PASSWORD = "a password typed twice"


def _run(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RISKOPS_DATABASE_URL": url, "RISKOPS_PUBLIC_URL": "https://risk.example.org"}
    return subprocess.run([*RISKOPS, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)


def test_create_asks_the_password_twice_and_stores_only_its_hash(empty_database_url: str) -> None:
    done = _run(
        empty_database_url,
        "user",
        "create",
        "--email",
        "Root@Example.org",
        "--role",
        "admin",
        stdin=f"{PASSWORD}\n" * 2,
    )
    assert done.returncode == 0, done.stderr
    assert "created admin user 1 <root@example.org>" in done.stdout and PASSWORD not in done.stdout + done.stderr
    engine = make_engine(empty_database_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash, display_name FROM app_user")).one()
        actors = conn.execute(text("SELECT actor, action FROM audit_entry WHERE entity_type = 'user'")).all()
    engine.dispose()
    assert stored.password_hash.startswith("$argon2id$") and stored.display_name == "Root"
    assert [tuple(a) for a in actors] == [("cli", "created"), ("cli", "password set")]
    mismatch = _run(
        empty_database_url, "user", "create", "--email", "b@example.org", "--role", "read", stdin="one\ntwo\n"
    )
    assert mismatch.returncode != 0
    again = _run(empty_database_url, "user", "create", "--email", "ROOT@example.org", "--role", "read", "--link")
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = _run(empty_database_url, "user", "create", "--email", "nope", "--role", "read", "--link")
    assert bad.returncode == 1 and "email" in bad.stderr


def test_a_printed_link_sets_the_password_on_a_real_server_whose_log_keeps_no_secret(
    empty_database_url: str, tmp_path: Path
) -> None:
    made = _run(
        empty_database_url, "user", "create", "--email", "ops@example.org", "--role", "write", "--name", "Ops", "--link"
    )
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip().splitlines()[-1]
    assert link.startswith("https://risk.example.org/console/set-password?token=")
    token = parse_qs(urlparse(link).query)["token"][0]
    log = tmp_path / "serve.log"
    with running_service(empty_database_url, log, ("RISKOPS_LOG_LEVEL", "debug")) as base:
        with httpx.Client(base_url=base) as browser:
            page = browser.get(urlparse(link)._replace(scheme="", netloc="").geturl())  # the link as a browser opens it
            assert page.status_code == 200 and token in page.text
            assert browser.post("/console/set-password", data={"token": token, "password": PASSWORD}).status_code == 303
            wrong = browser.post("/console/sign-in", data={"email": "ops@example.org", "password": "not it at all"})
            assert wrong.status_code == 401
            signed_in = browser.post("/console/sign-in", data={"email": "ops@example.org", "password": PASSWORD})
            assert signed_in.status_code == 303
            cookie = signed_in.cookies[users.SESSION_COOKIE]
            me = browser.get("/console/session")
            assert me.status_code == 200 and me.json()["email"] == "ops@example.org"
            csrf = me.json()["csrf_token"]
            assert browser.post("/console/sign-out", headers={users.CSRF_HEADER: csrf}).status_code == 303
    written = log.read_text()
    assert "/console/sign-in" in written  # the requests were logged...
    for secret in (PASSWORD, "not it at all", token, cookie, csrf):
        assert secret not in written  # ...and none of what they carried

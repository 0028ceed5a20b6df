"""The account page in process, on both databases: a user's own name, language and time zone (checked as the users
domain checks them, never their role or active flag), and their own API keys, the secret on its one answer page."""

import html
import re
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.audit.models import AuditEntry
from riskops.users.models import User
from tests.console.conftest import Signed
from tests.helpers import risk_body, row_counts
from tests.users.conftest import add_user

Signer = Callable[..., Signed]
ACCOUNT = "/console/account"


def shown(answer: httpx.Response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer.text)))


def _user(engine: Engine, email: str) -> User:
    with Session(engine) as session:
        return session.exec(select(User).where(User.email == email)).one()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Accept": "application/json"}


@pytest.mark.parametrize("role", list(Role))
def test_every_role_sees_its_own_account(signed: Signer, engine: Engine, role: Role) -> None:
    someone = signed(role)
    page = someone.client.get(ACCOUNT)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = shown(page)
    assert someone.email in text and "Your API keys" in text and "You have no API keys." in text
    offered = re.findall(r'<option value="(\w+)"[^>]*>\w+</option>', page.text.split('id="f-role"')[1])
    assert offered == [r.value for r in Role if r.rank <= role.rank]  # keys up to the user's own role
    assert page.text.count("<h1") == 1 and 'value="UTC"' in page.text


def test_a_user_saves_their_name_language_and_zone_and_sees_the_console_in_it(signed: Signer, engine: Engine) -> None:
    ann = signed(Role.write, email="ann@example.org")
    saved = ann.post(ACCOUNT, {"display_name": "Ann Lee", "language": "zh-CN", "time_zone": "Asia/Shanghai"})
    assert saved.status_code == 303 and saved.headers["location"] == f"{ACCOUNT}?saved=1"
    user = _user(engine, "ann@example.org")
    assert (user.display_name, user.language, user.time_zone) == ("Ann Lee", "zh-CN", "Asia/Shanghai")
    page = ann.client.get(saved.headers["location"])
    assert '<html lang="zh-CN">' in page.text and "你的账户" in page.text and "已保存" in page.text
    assert "Ann Lee" in page.text  # the header names them by the new name
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.entity_type == "user")).all()[-1]
    assert entry.actor == "ann@example.org" and entry.changes["language"] == {"old": "en", "new": "zh-CN"}


def test_an_unknown_time_zone_is_refused_in_the_domains_words_with_the_typed_values_kept(
    signed: Signer, engine: Engine
) -> None:
    ann = signed(Role.write, email="ann@example.org")
    before = row_counts(engine)
    refused = ann.post(ACCOUNT, {"display_name": "Ann Typed", "language": "zh-CN", "time_zone": "Mars/Olympus"})
    assert refused.status_code == 422
    assert "'Mars/Olympus' is not an IANA time zone, e.g. Europe/Paris" in shown(refused)
    assert 'value="Ann Typed"' in refused.text and 'value="Mars/Olympus"' in refused.text
    assert '<option value="zh-CN" selected>' in refused.text and 'aria-invalid="true"' in refused.text
    blank = ann.post(ACCOUNT, {"display_name": " ", "language": "en", "time_zone": "UTC"})
    assert blank.status_code == 422 and "body.display_name" in shown(blank)
    assert row_counts(engine) == before
    assert _user(engine, "ann@example.org").time_zone == "UTC"


def test_a_user_cannot_change_their_own_role_or_active_flag(signed: Signer, engine: Engine) -> None:
    rea = signed(Role.read, email="rea@example.org")
    posted = rea.post(
        ACCOUNT, {"display_name": "Rea", "language": "en", "time_zone": "UTC", "role": "admin", "active": "false"}
    )
    assert posted.status_code == 303
    user = _user(engine, "rea@example.org")
    assert (user.display_name, user.role, user.active) == ("Rea", "read", True)


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(signed: Signer, engine: Engine) -> None:
    ann = signed(Role.write, email="ann@example.org")
    before = row_counts(engine)
    for url, data in (
        (ACCOUNT, {"display_name": "Changed", "language": "en", "time_zone": "UTC"}),
        (f"{ACCOUNT}/api-keys", {"name": "x", "role": "read"}),
        (f"{ACCOUNT}/api-keys/1/revoke", {}),
    ):
        refused = ann.client.post(url, data=data)
        assert refused.status_code == 403 and "CSRF token" in shown(refused), url
    assert row_counts(engine) == before


def test_a_user_makes_a_key_sees_it_once_uses_it_and_revokes_it(signed: Signer, engine: Engine) -> None:
    ann = signed(Role.write, email="ann@example.org")
    answer = ann.post(f"{ACCOUNT}/api-keys", {"name": "ci-bot", "role": "write"})
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    found = re.search(r'<code id="secret-key">(rko_[^<]+)</code>', answer.text)
    assert found is not None and 'data-copy="secret-key"' in answer.text
    secret = found.group(1)
    page = ann.client.get(ACCOUNT)
    assert secret not in page.text and secret[:10] in page.text and "ci-bot" in page.text
    created = ann.client.post("/api/v1/risks", json=risk_body(), headers=_bearer(secret))
    assert created.status_code == 201
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.entity_type == "risk")).one()
        key = apikeys.public_keys(session, user_id=_user(engine, "ann@example.org").id)[0]
    assert entry.actor == "ann@example.org (key ci-bot)"
    assert "Never" not in shown(ann.client.get(ACCOUNT)).split("ci-bot")[1].split("Revoke")[0]  # last used shown
    assert ann.post(f"{ACCOUNT}/api-keys/{key.id}/revoke").status_code == 303
    assert ann.client.get("/api/v1/risks", headers=_bearer(secret)).status_code == 401
    assert "Revoked" in shown(ann.client.get(ACCOUNT))


def test_a_key_above_the_users_role_is_refused_and_anothers_key_is_not_theirs(signed: Signer, engine: Engine) -> None:
    rea = signed(Role.read, email="rea@example.org")
    refused = rea.post(f"{ACCOUNT}/api-keys", {"name": "wants-more", "role": "admin"})
    assert refused.status_code == 403
    assert "A key of yours may have at most your own role ('read'), not 'admin'." in shown(refused)
    assert 'value="wants-more"' in refused.text
    other = add_user(engine, "bo@example.org", Role.admin)
    with Session(engine, expire_on_commit=False) as session:
        theirs, secret = apikeys.create_own_key(session, other, ApiKeyCreate(name="bo-bot", role=Role.read))
        session.commit()
    assert rea.post(f"{ACCOUNT}/api-keys/{theirs.id}/revoke").status_code == 404
    assert "bo-bot" not in rea.client.get(ACCOUNT).text
    assert rea.client.get("/api/v1/risks", headers=_bearer(secret)).status_code == 200  # still working

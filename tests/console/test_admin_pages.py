"""The admin pages in process, on both databases: each renders its data for an admin, each form changes what the API
would and shows a refusal in the API's words with the typed values kept; secrets only on their one answer page;
other roles, and posts without the CSRF token, refused with nothing changed."""

import html
import re
from collections.abc import Callable

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from riskops.apikeys import service as apikeys
from riskops.apikeys.models import ApiKeyCreate, Role
from riskops.events.models import Delivery, DeliveryStatus, SubscriptionStatus
from riskops.incidents.escalations import service as escalations
from riskops.incidents.escalations.models import PolicySpec
from riskops.integrations import service as integrations
from riskops.integrations.models import IntegrationCreate
from riskops.reviews import calendar
from riskops.reviews.models import FeedTokenCreate
from riskops.risks.matrices import service as matrices
from riskops.users import service as users
from riskops.users.models import User, UserCreate
from riskops.webhooks import network
from riskops.webhooks import service as webhooks
from riskops.webhooks.models import SubscriptionCreate
from tests.conftest import ADMIN, SETTINGS
from tests.console.conftest import Signed
from tests.helpers import risk_body, row_counts
from tests.users.conftest import add_user

Signer = Callable[..., Signed]
ADMIN_PAGES = [
    "/console/admin", "/console/admin/users", "/console/admin/api-keys", "/console/admin/webhooks",
    "/console/admin/webhooks/1", "/console/admin/integrations", "/console/admin/escalation-policies",
    "/console/admin/escalation-policies/default", "/console/admin/matrix", "/console/admin/matrix/1",
    "/console/admin/feed-tokens",
]  # fmt: skip
ADMIN_POSTS = [
    ("/console/admin/users", {"email": "x@example.org", "role": "admin"}),
    ("/console/admin/users/1", {"role": "admin"}),
    ("/console/admin/users/1/password-link", {}),
    ("/console/admin/api-keys", {"name": "x", "role": "admin"}),
    ("/console/admin/api-keys/1/revoke", {}),
    ("/console/admin/webhooks", {"url": "http://127.0.0.1:9/x", "event_types": "*"}),
    ("/console/admin/webhooks/1/pause", {}),
    ("/console/admin/webhooks/1/resume", {}),
    ("/console/admin/webhooks/1/delete", {}),
    ("/console/admin/webhooks/1/deliveries/1/resend", {}),
    ("/console/admin/integrations", {"name": "x", "kind": "generic"}),
    ("/console/admin/escalation-policies", {"name": "x", "spec": "levels: [{wait_minutes: 1}]"}),
    ("/console/admin/escalation-policies/default", {"spec": "levels: [{wait_minutes: 1}]"}),
    ("/console/admin/matrix", {"spec": "{}"}),
    ("/console/admin/matrix/1/rescore", {"rationale": "x"}),
    ("/console/admin/feed-tokens", {"name": "x"}),
    ("/console/admin/feed-tokens/1/revoke", {}),
]
POLICY = "description: Page the on-call\nlevels:\n  - wait_minutes: 10\n    emails: [oncall@example.org]\nrepeat: 1\n"


@pytest.fixture
def stocked(engine: Engine) -> dict[str, int]:
    """One of everything the admin pages list, made through the services (as the API makes them)."""
    with Session(engine, expire_on_commit=False) as session:
        user = users.create_user(
            session, UserCreate(email="dee@example.org", display_name="Dee Admin-Listed", role=Role.read), actor="t"
        )
        key, _ = apikeys.create_key(session, ApiKeyCreate(name="ci-pipeline", role=Role.write), created_by="t")
        sub = webhooks.create_subscription(
            session, SubscriptionCreate.model_validate({"url": "http://127.0.0.1:9/hook", "event_types": ["risk.*"]}),
            ADMIN, network.destinations(SETTINGS),
        )  # fmt: skip
        integration, _ = integrations.create(
            session, IntegrationCreate.model_validate({"name": "prod-alerts", "kind": "alertmanager"}), ADMIN
        )
        escalations.save(session, PolicySpec.model_validate({"name": "default", **yaml.safe_load(POLICY)}), ADMIN)
        token, _ = calendar.create_token(session, FeedTokenCreate(name="ops-calendar", owner="ops"), ADMIN)
        session.commit()
        return {"user": user.id, "key": key.id, "sub": sub.id, "integration": integration.id, "token": token.id}


def shown(answer: httpx.Response) -> str:
    """A page's text as a reader sees it: markup left out, entities read."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer.text)))


def test_every_admin_page_shows_its_data_to_an_admin(signed: Signer, stocked: dict[str, int]) -> None:
    admin = signed(Role.admin)
    landing = admin.client.get("/console/admin")
    assert landing.status_code == 200
    for section in ("users", "api-keys", "webhooks", "integrations", "escalation-policies", "matrix", "feed-tokens"):
        assert f'href="/console/admin/{section}"' in landing.text
    expected = {
        "/console/admin/users": ["dee@example.org", "Dee Admin-Listed", "Not set"],
        "/console/admin/api-keys": ["ci-pipeline", "Service key", "Never", "write"],
        "/console/admin/webhooks": ["http://127.0.0.1:9/hook", "risk.*", "active"],
        f"/console/admin/webhooks/{stocked['sub']}": ["http://127.0.0.1:9/hook", "Nothing delivered yet."],
        "/console/admin/integrations": ["prod-alerts", "alertmanager", "/api/v1/inbound/alertmanager", "receivers:"],
        "/console/admin/escalation-policies": ["default", "Page the on-call"],
        "/console/admin/escalation-policies/default": ["oncall@example.org", "wait_minutes: 10"],
        "/console/admin/matrix": ["Version 1", "The current version."],
        "/console/admin/feed-tokens": ["ops-calendar", "ops", "rkf_"],
    }
    for url, texts in expected.items():
        page = admin.client.get(url)
        assert page.status_code == 200, (url, page.text)
        assert page.headers["cache-control"] == "no-store"
        for text in texts:
            assert text in page.text, (url, text)
        assert page.text.count("<h1") == 1


def test_the_matrix_is_a_grid_of_levels_in_their_colours(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    with Session(engine) as session:
        spec = matrices.current(session).parsed()
    page = admin.client.get("/console/admin/matrix")
    grid = page.text.split('<table class="matrix">')[1].split("</table>")[0]
    assert grid.count("<td>") == len(spec.likelihood) * len(spec.impact)
    for level in spec.levels:
        assert f'style="background:{level.color};' in grid  # the cells in each level's colour, with its name
        assert f">{level.name}</span>" in grid
    intervals = shown(page).split("Levels")[1]
    assert all(str(level.review_interval_days) in intervals for level in spec.levels)
    first_row = re.findall(r"<th scope=\"row\">([^<]+)</th>", grid)[0]
    assert first_row.startswith(str(len(spec.likelihood)))  # the likeliest row on top


@pytest.mark.parametrize("role", [Role.read, Role.write])
def test_other_roles_get_403_on_every_admin_page_and_post_and_no_admin_link(
    signed: Signer, stocked: dict[str, int], engine: Engine, role: Role
) -> None:
    someone = signed(role)
    before = row_counts(engine)
    for url in ADMIN_PAGES:
        page = someone.client.get(url)
        assert page.status_code == 403, url
        assert "This needs the 'admin' role" in shown(page)
    for url, data in ADMIN_POSTS:
        assert someone.post(url, data).status_code == 403, url
    assert row_counts(engine) == before
    account = someone.client.get("/console/account")
    assert account.status_code == 200 and 'href="/console/admin"' not in account.text
    assert 'href="/console/admin"' in signed(Role.admin).client.get("/console/account").text


def test_an_admin_post_without_the_csrf_token_is_refused_and_changes_nothing(
    signed: Signer, stocked: dict[str, int], engine: Engine
) -> None:
    admin = signed(Role.admin)
    before = row_counts(engine)
    for url, data in ADMIN_POSTS:
        refused = admin.client.post(url, data=data)
        assert refused.status_code == 403, url
        assert "CSRF token" in refused.text
        wrong = admin.client.post(url, data={**data, "csrf_token": "not-the-token"})
        assert wrong.status_code == 403, url
    assert row_counts(engine) == before


# ---- users ----


def _user(engine: Engine, email: str) -> User:
    with Session(engine) as session:
        return session.exec(select(User).where(User.email == email)).one()


def test_an_admin_creates_a_user_and_a_refusal_keeps_what_was_typed(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    typed = {"email": "Eve@Example.org", "display_name": "Eve", "role": "write", "language": "zh-CN"}
    wrong = admin.post("/console/admin/users", {**typed, "time_zone": "Mars/Olympus"})
    assert wrong.status_code == 422
    assert "'Mars/Olympus' is not an IANA time zone" in shown(wrong) and 'aria-invalid="true"' in wrong.text
    assert 'value="Eve@Example.org"' in wrong.text and 'value="Mars/Olympus"' in wrong.text
    assert '<option value="zh-CN" selected>' in wrong.text and '<option value="write" selected>' in wrong.text
    made = admin.post("/console/admin/users", {**typed, "time_zone": "Asia/Shanghai"})
    assert made.status_code == 303 and made.headers["location"] == "/console/admin/users"
    eve = _user(engine, "eve@example.org")
    assert (eve.display_name, eve.role, eve.language, eve.time_zone) == ("Eve", "write", "zh-CN", "Asia/Shanghai")
    again = admin.post("/console/admin/users", {**typed, "time_zone": "UTC"})
    assert again.status_code == 409 and "A user with the e-mail eve@example.org exists already." in again.text


def test_an_admin_changes_a_role_and_disabling_ends_the_users_session_and_keys(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    writer = signed(Role.write, email="wes@example.org")
    wes = _user(engine, "wes@example.org")
    with Session(engine) as session:
        _, secret = apikeys.create_own_key(session, wes.id, ApiKeyCreate(name="wes-ci", role=Role.write))
        session.commit()
    bearer = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
    assert writer.client.get("/api/v1/risks", headers=bearer).status_code == 200
    assert writer.client.get("/console/account").status_code == 200
    assert admin.post(f"/console/admin/users/{wes.id}", {"role": "read"}).status_code == 303
    assert _user(engine, "wes@example.org").role == "read"
    assert writer.client.get("/api/v1/risks", headers=bearer).status_code == 401  # a write key of a read user
    assert admin.post(f"/console/admin/users/{wes.id}", {"role": "write"}).status_code == 303
    assert writer.client.get("/api/v1/risks", headers=bearer).status_code == 200
    disabled = admin.post(f"/console/admin/users/{wes.id}", {"active": "false"})
    assert disabled.status_code == 303 and _user(engine, "wes@example.org").active is False
    next_page = writer.client.get("/console/account")
    assert next_page.status_code == 303 and next_page.headers["location"].startswith("/console/sign-in")
    assert writer.client.get("/api/v1/risks", headers=bearer).status_code == 401
    assert "Enable" in admin.client.get("/console/admin/users").text
    assert admin.post(f"/console/admin/users/{wes.id}", {"active": "true"}).status_code == 303
    assert _user(engine, "wes@example.org").active is True
    assert admin.post(f"/console/admin/users/{wes.id}", {"role": "owner"}).status_code == 422
    assert admin.post("/console/admin/users/99999", {"role": "read"}).status_code == 404


def test_a_set_password_link_is_shown_once_and_works(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    user_id = add_user(engine, "new@example.org", Role.read, password=None)
    answer = admin.post(f"/console/admin/users/{user_id}/password-link")
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    url = re.search(r'<code id="secret-link">([^<]+)</code>', answer.text)
    assert url is not None and "/console/set-password?token=" in url.group(1)
    assert 'data-copy="secret-link"' in answer.text and "new@example.org" in answer.text
    token = url.group(1).split("token=")[1]
    assert url.group(1).startswith("http://testserver/")  # a full URL to send, even without RISKOPS_PUBLIC_URL
    assert token not in admin.client.get("/console/admin/users").text
    form = admin.client.get(f"/console/set-password?token={token}")
    assert form.status_code == 200 and f'value="{token}"' in form.text


def test_a_display_name_is_text_on_the_users_page(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    with Session(engine) as session:
        users.create_user(
            session, UserCreate(email="x@example.org", display_name="<script>alert(1)</script>", role=Role.read),
            actor="t",
        )  # fmt: skip
        session.commit()
    page = admin.client.get("/console/admin/users")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text


# ---- API keys ----


def test_an_admin_makes_and_revokes_keys_and_sees_every_keys_owner(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    owner = add_user(engine, "own@example.org", Role.write)
    with Session(engine) as session:
        apikeys.create_own_key(session, owner, ApiKeyCreate(name="own-bot", role=Role.read))
        session.commit()
    refused = admin.post("/console/admin/api-keys", {"name": "", "role": "write"})
    assert refused.status_code == 422 and "body.name" in refused.text
    assert '<option value="write" selected>' in refused.text
    answer = admin.post("/console/admin/api-keys", {"name": "deploy", "role": "write"})
    assert answer.status_code == 201
    secret = re.search(r'<code id="secret-key">(rko_[^<]+)</code>', answer.text)
    assert secret is not None and 'data-copy="secret-key"' in answer.text
    bearer = {"Authorization": f"Bearer {secret.group(1)}", "Accept": "application/json"}
    assert admin.client.get("/api/v1/risks", headers=bearer).status_code == 200  # the key wins over the cookie
    listing = admin.client.get("/console/admin/api-keys")
    assert secret.group(1) not in listing.text and secret.group(1)[:10] in listing.text
    assert "own-bot" in listing.text and "own@example.org" in listing.text
    with Session(engine) as session:
        deploy = next(k for k in apikeys.list_keys(session) if k.name == "deploy")
    assert (deploy.role, deploy.created_by, deploy.user_id) == ("write", admin.email, None)
    assert admin.post(f"/console/admin/api-keys/{deploy.id}/revoke").status_code == 303
    assert admin.client.get("/api/v1/risks", headers=bearer).status_code == 401  # at once on this instance
    assert admin.post(f"/console/admin/api-keys/{deploy.id}/revoke").status_code == 409


# ---- webhooks ----


def test_an_admin_subscribes_pauses_resumes_resends_and_deletes(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    refused = admin.post("/console/admin/webhooks", {"url": "not a url", "description": "typed"})
    assert refused.status_code == 422 and "body.url" in refused.text and 'value="typed"' in refused.text
    answer = admin.post(
        "/console/admin/webhooks", {"url": "http://127.0.0.1:9/in", "event_types": ["incident.*", "risk.created"]}
    )
    assert answer.status_code == 201
    secret = re.search(r'<code id="secret-signing-secret">(whsec_[^<]+)</code>', answer.text)
    assert secret is not None
    with Session(engine) as session:
        sub = webhooks.list_subscriptions(session)[0]
        assert sub.event_types == ["incident.*", "risk.created"] and sub.secret == secret.group(1)
        webhooks.send_test(session, sub)
        delivery = session.exec(select(Delivery)).one()
        delivery.status, delivery.attempts, delivery.last_error = DeliveryStatus.failed, 3, "connection refused"
        session.add(delivery)
        session.commit()
        sub_id, delivery_id = sub.id, delivery.id
    assert secret.group(1) not in admin.client.get("/console/admin/webhooks").text
    log = admin.client.get(f"/console/admin/webhooks/{sub_id}")
    assert secret.group(1) not in log.text
    assert "webhook.test" in log.text and "failed" in log.text and "connection refused" in log.text
    assert admin.post(f"/console/admin/webhooks/{sub_id}/deliveries/{delivery_id}/resend").status_code == 303
    with Session(engine) as session:
        assert session.get(Delivery, delivery_id).status == DeliveryStatus.pending  # type: ignore[union-attr]
    again = admin.post(f"/console/admin/webhooks/{sub_id}/deliveries/{delivery_id}/resend")
    assert again.status_code == 409 and f"Delivery {delivery_id} is already queued." in again.text
    assert admin.post(f"/console/admin/webhooks/{sub_id}/pause").status_code == 303
    assert webhooks_status(engine, sub_id) == SubscriptionStatus.paused
    assert "Resume" in admin.client.get(f"/console/admin/webhooks/{sub_id}").text
    assert admin.post(f"/console/admin/webhooks/{sub_id}/pause").status_code == 409
    assert admin.post(f"/console/admin/webhooks/{sub_id}/resume").status_code == 303
    assert webhooks_status(engine, sub_id) == SubscriptionStatus.active
    assert admin.post(f"/console/admin/webhooks/{sub_id}/delete").status_code == 303
    with Session(engine) as session:
        assert webhooks.list_subscriptions(session) == []
    assert admin.client.get(f"/console/admin/webhooks/{sub_id}").status_code == 404


def webhooks_status(engine: Engine, sub_id: int) -> SubscriptionStatus:
    with Session(engine) as session:
        return webhooks.get_subscription(session, sub_id).status


# ---- integrations ----


def test_an_integration_shows_its_token_once_and_its_alertmanager_receiver(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    unreadable = admin.post("/console/admin/integrations", {"name": "am", "kind": "alertmanager", "routing": "a: [b"})
    assert unreadable.status_code == 422 and "The request body could not be read" in unreadable.text
    assert 'value="am"' in unreadable.text and "a: [b" in unreadable.text
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )  # nine levels of aliases: 9 * 4**9 (2.4 million) values from ten lines
    bomb = admin.post("/console/admin/integrations", {"name": "am", "kind": "alertmanager", "routing": laughs})
    assert bomb.status_code == 422 and "YAML aliases (*name) are not accepted" in bomb.text
    bad_regex = "routes:\n  - matchers: [{label: service, op: '=~', value: '('}]\n"
    refused = admin.post("/console/admin/integrations", {"name": "am", "kind": "alertmanager", "routing": bad_regex})
    assert refused.status_code == 422 and "Invalid regular expression" in refused.text
    answer = admin.post("/console/admin/integrations", {"name": "prod am", "kind": "alertmanager"})
    assert answer.status_code == 201
    token = re.search(r'<code id="secret-token">(rki_[^<]+)</code>', answer.text)
    assert token is not None
    snippet = re.search(r'<code id="snippet">([^<]+)</code>', answer.text)
    assert snippet is not None and 'data-copy="snippet"' in answer.text
    receiver = yaml.safe_load(html.unescape(snippet.group(1)))["receivers"][0]
    config = receiver["webhook_configs"][0]
    assert receiver["name"] == "riskops-prod am"
    assert config["url"] == "http://testserver/api/v1/inbound/alertmanager"
    assert config["http_config"]["authorization"] == {"type": "Bearer", "credentials": token.group(1)}
    listing = admin.client.get("/console/admin/integrations")
    assert token.group(1) not in listing.text and "PASTE-THE-INTEGRATION-TOKEN-HERE" in listing.text
    assert "http://testserver/api/v1/inbound/alertmanager" in listing.text
    generic = admin.post("/console/admin/integrations", {"name": "ci", "kind": "generic"})
    assert (
        generic.status_code == 201
        and 'id="secret-signing-secret"' in generic.text
        and 'id="snippet"' not in generic.text
    )
    with Session(engine) as session:
        assert sorted(i.name for i in integrations.list_integrations(session)) == ["ci", "prod am"]


# ---- escalation policies ----


def test_an_admin_creates_and_edits_a_policy_in_the_apis_words(signed: Signer, engine: Engine) -> None:
    admin = signed(Role.admin)
    assert admin.post("/console/admin/escalation-policies", {"name": "night", "spec": POLICY}).status_code == 303
    with Session(engine) as session:
        night = escalations.get(session, "night").parsed()
    assert (night.levels[0].wait_minutes, night.repeat) == (10, 1)
    view = admin.client.get("/console/admin/escalation-policies/night")
    assert "oncall@example.org" in view.text and "Escalation policy night" in view.text
    wrong = POLICY.replace("wait_minutes: 10", "wait_minutes: -5")
    refused = admin.post("/console/admin/escalation-policies/night", {"spec": wrong})
    assert refused.status_code == 422
    assert "body.levels.0.wait_minutes: Input should be greater than or equal to 0" in refused.text
    assert "wait_minutes: -5" in refused.text  # the typed text kept
    unknown = admin.post(
        "/console/admin/escalation-policies/night", {"spec": "levels: [{wait_minutes: 5, webhooks: [999]}]"}
    )
    assert unknown.status_code == 422 and "Level 1 names webhook subscriptions that do not exist: [999]." in shown(
        unknown
    )
    edited = admin.post("/console/admin/escalation-policies/night", {"spec": POLICY.replace("repeat: 1", "repeat: 3")})
    assert edited.status_code == 303
    with Session(engine) as session:
        assert escalations.get(session, "night").parsed().repeat == 3
    bad_name = admin.post("/console/admin/escalation-policies", {"name": "Night Shift", "spec": POLICY})
    assert bad_name.status_code == 422 and "body.name" in bad_name.text and 'value="Night Shift"' in bad_name.text


# ---- the risk matrix ----


def test_an_admin_publishes_a_matrix_and_rescores_to_it(signed: Signer, engine: Engine, client: TestClient) -> None:
    assert client.post("/api/v1/risks", json=risk_body()).status_code == 201
    admin = signed(Role.admin)
    page = admin.client.get("/console/admin/matrix")
    published = re.search(r'<textarea id="f-spec"[^>]*>([^<]+)</textarea>', page.text)
    assert published is not None
    spec = html.unescape(published.group(1)).replace("name: ", "name: Adopted ", 1)
    wrong = admin.post("/console/admin/matrix", {"spec": spec.replace("appetite:", "appetite: nowhere #")})
    assert wrong.status_code == 422 and "appetite 'nowhere' is not one of the levels" in shown(wrong)
    assert "appetite: nowhere #" in html.unescape(wrong.text)
    assert admin.post("/console/admin/matrix", {"spec": spec}).status_code == 303
    with Session(engine) as session:
        assert matrices.current(session).version == 2
    assert "Version 2: Adopted" in admin.client.get("/console/admin/matrix").text
    assert "Version 1" in admin.client.get("/console/admin/matrix/1").text
    old = admin.post("/console/admin/matrix/1/rescore", {"rationale": "adopt"})
    assert old.status_code == 409 and "Only the current matrix (version 2) can be adopted." in old.text
    blank = admin.post("/console/admin/matrix/2/rescore", {"rationale": ""})
    assert blank.status_code == 422 and "body.rationale" in blank.text
    done = admin.post("/console/admin/matrix/2/rescore", {"rationale": "adopt the 2026 matrix"})
    assert done.status_code == 200 and "Rescored to version 2" in done.text and "1 open risk(s)" in done.text
    assert client.get("/api/v1/risks").json()["items"][0]["matrix_version"] == 2


# ---- feed tokens ----


def test_a_feed_token_shows_its_url_once_and_is_revoked(signed: Signer, engine: Engine, client: TestClient) -> None:
    admin = signed(Role.admin)
    assert admin.post("/console/admin/feed-tokens", {"name": ""}).status_code == 422
    answer = admin.post("/console/admin/feed-tokens", {"name": "ana's phone", "owner": "ana"})
    assert answer.status_code == 201
    url = re.search(r'<code id="secret-feed-url">([^<]+)</code>', answer.text)
    assert url is not None and "/api/v1/register/calendar.ics?token=rkf_" in url.group(1)
    token = url.group(1).split("token=")[1]
    feed = url.group(1).removeprefix("http://testserver")
    assert client.get(feed, headers={"Authorization": ""}).status_code == 200
    listing = admin.client.get("/console/admin/feed-tokens")
    assert token not in listing.text and "ana&#39;s phone" in listing.text
    with Session(engine) as session:
        token_id = calendar.list_tokens(session)[0].id
    assert admin.post(f"/console/admin/feed-tokens/{token_id}/revoke").status_code == 303
    assert client.get(feed, headers={"Authorization": ""}).status_code == 401

"""The console's frame for a browser: signing in through pages, where a browser is sent without a session, the
first start, errors as pages in the API's words, the page headers, and the console turned off."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.apikeys.models import Role
from riskops.app import create_app
from riskops.config import Settings
from riskops.users import service as users
from tests.console.conftest import HTML, SETTINGS
from tests.users.conftest import PASSWORD, add_user


def browser(engine: Engine, settings: Settings = SETTINGS) -> TestClient:
    return TestClient(create_app(settings, engine=engine), follow_redirects=False, headers=HTML)


def test_the_first_start_shows_how_to_create_a_user_and_then_the_form(engine: Engine) -> None:
    with browser(engine) as client:
        first = client.get("/console/sign-in")
        assert first.status_code == 200 and "riskops user create --email" in first.text
        add_user(engine, "ann@example.org")
        assert "riskops user create --email" not in client.get("/console/sign-in").text


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(engine: Engine) -> None:
    add_user(engine, "ann@example.org")
    with browser(engine) as client:
        away = client.get("/console/somewhere/deep")
        assert away.status_code == 303 and away.headers["location"] == "/console/sign-in?next=/console/somewhere/deep"
        form = client.get(away.headers["location"])
        assert 'name="next" value="/console/somewhere/deep"' in form.text
        done = client.post(
            "/console/sign-in",
            data={"email": "ann@example.org", "password": PASSWORD, "next": "/console/somewhere/deep"},
        )
        assert done.status_code == 303 and done.headers["location"] == "/console/somewhere/deep"
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        page = client.get("/console/somewhere/deep")  # signed in: no such page, said as a page
        assert (
            page.status_code == 404
            and "No such page." in page.text
            and page.headers["content-type"].startswith("text/html")
        )


def test_sign_in_never_sends_the_browser_to_another_site(engine: Engine) -> None:
    add_user(engine, "ann@example.org")
    with browser(engine) as client:
        for target in ("https://evil.example/", "//evil.example/console/", "/console/\\evil", "/api/v1/risks"):
            done = client.post(
                "/console/sign-in", data={"email": "ann@example.org", "password": PASSWORD, "next": target}
            )
            assert done.headers["location"] == "/console/", target


def test_a_refused_sign_in_shows_the_form_again_with_the_address_and_without_the_password(engine: Engine) -> None:
    add_user(engine, "ann@example.org")
    with browser(engine) as client:
        refused = client.post("/console/sign-in", data={"email": "ann@example.org", "password": "wrong but long"})
        assert refused.status_code == 401 and users.SIGN_IN_REFUSED in refused.text
        assert 'value="ann@example.org"' in refused.text and "wrong but long" not in refused.text
        assert "set-cookie" not in refused.headers


def test_pages_are_not_cached_framed_or_scripted_from_elsewhere(engine: Engine) -> None:
    with browser(engine) as client:
        page = client.get("/console/sign-in")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert page.headers["cache-control"] == "no-store" and page.headers["x-content-type-options"] == "nosniff"


def test_the_page_language_follows_the_browser_before_sign_in(engine: Engine) -> None:
    with browser(engine) as client:
        chinese = client.get("/console/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        english = client.get("/console/sign-in", headers={"Accept-Language": "fr, en;q=0.5"})
    assert '<html lang="zh-CN">' in chinese.text and "<h1>登录</h1>" in chinese.text
    assert '<html lang="en">' in english.text and "<h1>Sign in</h1>" in english.text


def test_a_refusal_is_a_page_for_a_browser_and_a_problem_for_an_api_client(engine: Engine) -> None:
    add_user(engine, "rea@example.org", Role.read)
    with browser(engine) as client:
        client.post("/console/sign-in", data={"email": "rea@example.org", "password": PASSWORD})
        token = client.get("/console/session", headers={"Accept": "application/json"}).json()["csrf_token"]
        page = client.post("/console/sign-out", data={users.CSRF_FIELD: "<b>forged</b>"})
        assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
        assert "CSRF token" in page.text  # the API's words
        problem = client.post("/console/sign-out", data={users.CSRF_FIELD: "x"}, headers={"Accept": "application/json"})
        assert problem.status_code == 403 and problem.json()["detail"] == page_detail(page.text)
        assert client.post("/console/sign-out", data={users.CSRF_FIELD: token}).status_code == 303


def page_detail(text: str) -> str:
    start = text.index('<div class="problem" role="alert">\n  <p>') + len('<div class="problem" role="alert">\n  <p>')
    return text[start : text.index("</p>", start)].replace("&#39;", "'")


def test_the_set_password_page_shows_a_bad_link_in_the_api_s_words(engine: Engine) -> None:
    with browser(engine) as client:
        page = client.post(
            "/console/set-password", data={"token": "<script>x</script>", "password": "long enough secret"}
        )
    assert page.status_code == 401 and "unknown, used or expired" in page.text
    assert "<script>x</script>" not in page.text and "&lt;script&gt;x&lt;/script&gt;" in page.text


def test_the_console_can_be_turned_off(engine: Engine) -> None:
    off = Settings(scheduler_enabled=False, console=False)
    with browser(engine, off) as client:
        assert client.get("/").status_code == 404
        assert client.get("/console/sign-in").status_code == 404
        assert client.get("/console/static/console.css").status_code == 404
        assert client.get("/healthz").status_code == 200
    with browser(engine) as client:
        assert client.get("/").headers["location"] == "/console/"

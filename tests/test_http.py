"""The request guard and the error answers, in process: request ids, body limits, NUL, 500, 503, OpenAPI."""

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from sqlalchemy import Engine, text
from starlette.types import Message, Receive, Scope, Send

from riskops.app import create_app
from riskops.config import Settings
from riskops.guard import RequestGuard
from tests.conftest import Keys
from tests.helpers import assert_problem, free_port, risk_body, row_counts

SMALL = Settings(
    scheduler_enabled=False, max_body_bytes=1024, inbound_max_bytes=2048, import_max_bytes=4096
)  # fmt: skip


@pytest.fixture
def small_limits(engine: Engine, keys: Keys) -> Iterator[TestClient]:
    with TestClient(create_app(SMALL, engine=engine), headers=keys.headers("write")) as client:
        yield client


# ---- request ids ----


def test_every_answer_carries_a_request_id(client: TestClient) -> None:
    generated = client.get("/api/v1/risks").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/api/v1/risks").headers["x-request-id"] != generated
    assert client.get("/healthz", headers={"X-Request-ID": "edge-7f3a:42"}).headers["x-request-id"] == "edge-7f3a:42"


@pytest.mark.parametrize("incoming", ["x" * 129, "has space", "semi;colon", ""])
def test_an_insane_incoming_request_id_is_replaced(client: TestClient, incoming: str) -> None:
    assert re.fullmatch(
        r"[0-9a-f]{32}", client.get("/healthz", headers={"X-Request-ID": incoming}).headers["x-request-id"]
    )


def test_a_problem_names_its_request_id(client: TestClient) -> None:
    response = client.get("/api/v1/risks/RSK-999")
    assert assert_problem(response, 404)["request_id"] == response.headers["x-request-id"]


# ---- body limits ----


def test_a_declared_body_over_the_limit_is_refused_before_authentication(small_limits: TestClient) -> None:
    response = small_limits.post(
        "/api/v1/risks",
        content=b"x" * 1025,
        headers={"Authorization": "Bearer nope", "Content-Type": "application/json"},
    )
    body = assert_problem(response, 413)
    assert "1024 bytes" in body["detail"] and body["request_id"] == response.headers["x-request-id"]


def test_a_streamed_body_is_refused_once_it_passes_the_limit(small_limits: TestClient, engine: Engine) -> None:
    before = row_counts(engine)

    def chunks() -> Iterator[bytes]:  # no Content-Length: only the running count can stop it
        yield from (b'{"title": "', b"x" * 600, b"x" * 600, b'"}')

    assert_problem(small_limits.post("/api/v1/risks", content=chunks(), headers={"Authorization": "Bearer nope"}), 413)
    assert row_counts(engine) == before


def test_a_body_at_the_limit_is_read(small_limits: TestClient) -> None:
    body = json.dumps(risk_body(description="d" * 100)).encode()
    padded = body + b" " * (1024 - len(body))
    assert (
        small_limits.post("/api/v1/risks", content=padded, headers={"Content-Type": "application/json"}).status_code
        == 201
    )


def test_import_and_inbound_have_their_own_limits(small_limits: TestClient) -> None:
    def upload(size: int) -> Any:
        return small_limits.post("/api/v1/risks/import", files={"file": ("risks.csv", b"t" * size, "text/csv")})

    assert upload(3000).status_code != 413  # past the general limit, within the import limit
    assert_problem(upload(5000), 413)
    alert = b'{"alerts": []}' + b" " * 1500
    assert small_limits.post("/api/v1/inbound/alertmanager", content=alert).status_code == 401
    assert_problem(small_limits.post("/api/v1/inbound/alertmanager", content=alert + b" " * 1000), 413)


def test_a_body_cut_off_by_a_disconnect_is_never_handed_on() -> None:
    handed_on: list[Scope] = []
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        handed_on.append(scope)

    messages: list[Message] = [
        {"type": "http.request", "body": b'{"title": "half', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/risks", "query_string": b"", "headers": []}
    asyncio.run(RequestGuard(app, SMALL, lambda: [])(scope, receive, send))
    assert handed_on == [] and sent == []


# ---- NUL ----


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "flood\x00"}, "body.title"),
        ({"tags": ["dc", "x\x00y"]}, "body.tags.1"),
        ({"inherent": {"likelihood": 3, "impact": 5, "\x00": "x"}}, "body.inherent.\\u0000"),
    ],
)
def test_nul_in_a_json_body_is_refused_naming_the_field(
    client: TestClient, engine: Engine, overrides: dict[str, Any], field: str
) -> None:
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/risks", json=risk_body(**overrides)), 422, field)
    assert row_counts(engine) == before


def test_nul_in_a_utf16_body_is_refused(client: TestClient) -> None:
    body = json.dumps(risk_body(owner="a\x00")).encode("utf-16")
    assert_problem(
        client.post("/api/v1/risks", content=body, headers={"Content-Type": "application/json"}), 422, "body.owner"
    )


def test_an_escaped_backslash_before_u0000_is_text(client: TestClient) -> None:
    title = "C:\\u0000 is not a NUL"  # the JSON has \\u0000: a backslash, then the letters u0000
    created = client.post("/api/v1/risks", json=risk_body(title=title))
    assert created.status_code == 201, created.text
    assert client.get(f"/api/v1/risks/{created.json()['id']}").json()["title"] == title


def test_nul_in_a_query_or_path_parameter_is_refused(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/risks?q=flood%00"), 422, "query.q")
    assert_problem(client.get("/api/v1/risks/RSK%00-1"), 422, "path.risk_ref")
    assert_problem(client.get("/api/v1/no-such%00thing"), 422, "path")


# ---- 500 and 503 ----


def test_an_unhandled_error_is_a_logged_500_problem(
    engine: Engine, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(scheduler_enabled=False), engine=engine)

    @app.get("/test-only/fails")
    def fails() -> None:
        raise RuntimeError("the test's own failure")

    with TestClient(app) as client:
        response = client.get("/test-only/fails")
    body = assert_problem(response, 500)
    assert body["request_id"] == response.headers["x-request-id"]
    assert "the test's own failure" not in response.text
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert logged and "GET /test-only/fails" in logged[0].getMessage()


@pytest.mark.parametrize("backend_of_url", ["sqlite", "postgresql"])
def test_an_unreachable_database_is_a_503_with_retry_after(backend_of_url: str, tmp_path: Any) -> None:
    url = {
        "sqlite": f"sqlite:///{tmp_path}/no-such-directory/riskops.db",
        "postgresql": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/riskops",  # nothing listens there
    }[backend_of_url]
    with TestClient(create_app(Settings(database_url=url, scheduler_enabled=False))) as client:
        response = client.get("/api/v1/risks", headers={"Authorization": "Bearer rko_anything"})
        body = assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0 and body["request_id"] == response.headers["x-request-id"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # a server that ends a connection mid-transaction
def test_a_connection_lost_mid_write_is_a_503_and_the_write_is_not_applied(client: TestClient, engine: Engine) -> None:
    # A real lost connection: the server ends this backend after the insert, before the commit.
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION test_drop_connection() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
            )
        )
        conn.execute(
            text("CREATE TRIGGER test_drop_connection AFTER INSERT ON risk EXECUTE FUNCTION test_drop_connection()")
        )
    try:
        before = row_counts(engine)
        response = client.post("/api/v1/risks", json=risk_body())
        assert_problem(response, 503)
        assert response.headers["retry-after"]
        assert row_counts(engine) == before
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_drop_connection ON risk"))
            conn.execute(text("DROP FUNCTION test_drop_connection()"))
    # The dead connection left the pool: the same app writes again at once.
    assert client.post("/api/v1/risks", json=risk_body()).status_code == 201


# ---- the OpenAPI document ----

PROBLEM_REF = "#/components/schemas/ProblemDetails"


def expected_problems(path: str, method: str, operation: dict[str, Any]) -> set[str]:
    parameters = operation.get("parameters", [])
    expected = {"500", "503"}
    if path.startswith("/api/"):
        expected |= {"401", "403"}
    if any(p["in"] == "path" for p in parameters):
        expected.add("404")
    if parameters or "requestBody" in operation:
        expected.add("422")
    if "requestBody" in operation:
        expected.add("413")
    if method in ("post", "put", "patch", "delete"):
        expected.add("409")
    if any(p["name"].lower() == "if-match" for p in parameters):
        expected.add("412")
    return expected


def openapi(app_client: TestClient) -> dict[str, Any]:
    response = app_client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_every_operation_documents_its_problem_answers(client: TestClient) -> None:
    document = openapi(client)
    operations = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]
    assert len(operations) > 50
    for path, method, operation in operations:
        responses = operation["responses"]
        missing = expected_problems(path, method, operation) - set(responses)
        assert not missing, f"{method.upper()} {path} lacks {missing}"
        for status in expected_problems(path, method, operation):
            content = responses[status]["content"]
            if path == "/readyz" and status == "503":
                continue  # readiness answers in its own JSON shape
            assert content["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}, (method, path, status)
            assert "application/json" not in content, (method, path, status)


def test_declared_answers_are_kept(client: TestClient) -> None:
    paths = openapi(client)["paths"]
    assert "201" in paths["/api/v1/risks"]["post"]["responses"]
    assert "204" in paths["/api/v1/webhooks/{sub_id}"]["delete"]["responses"]
    conflict = paths["/api/v1/reviews"]["post"]["responses"]["409"]
    assert conflict["description"] == "Opened already, or its quarter has not started"
    assert conflict["content"]["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}
    unready = paths["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert unready["required"] == ["status", "reason"]
    assert "Retry-After" in paths["/api/v1/risks"]["get"]["responses"]["503"]["headers"]


def test_the_openapi_document_is_valid(client: TestClient) -> None:
    document = openapi(client)
    validate(document)
    schemas = document["components"]["schemas"]
    problem = schemas["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert problem["additionalProperties"] is True and "request_id" in problem["properties"]
    assert {"loc", "field", "message"} <= set(schemas["FieldProblem"]["properties"])
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape is not what riskops answers


def test_a_method_the_path_does_not_take_is_405_naming_the_ones_it_does(client: TestClient) -> None:
    response = client.request("TRACE", "/readyz")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"
    # /risks is two routes (GET and POST): the answer names both, whichever Starlette matched first
    assert client.delete("/api/v1/risks").headers["allow"] == "GET, POST"

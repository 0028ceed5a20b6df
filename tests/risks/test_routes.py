"""The register over HTTP: shapes, problem details, concurrency, listing."""

from datetime import timedelta
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.risks.matrices.service import BUILTIN_MATRICES
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, risk_body, row_counts


def _create(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/risks", json=risk_body(**overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_log_reassess_and_read_back(client: TestClient, frozen_clock: FrozenClock) -> None:
    created = client.post("/api/v1/risks", json=risk_body())
    assert created.status_code == 201
    risk = created.json()
    assert created.headers["location"] == f"/api/v1/risks/{risk['id']}"
    assert created.headers["etag"] == '"1"'
    assert risk["inherent"] == {"likelihood": 3, "impact": 5, "score": 15, "level": "high", "impacts": None}
    assert risk["residual"] == {"likelihood": 2, "impact": 4, "score": 8, "level": "medium", "impacts": None}
    assert risk["created_at"].endswith("Z") or risk["created_at"].endswith("+00:00")

    frozen_clock.advance(timedelta(days=1))
    assessed = client.post(
        f"/api/v1/risks/{risk['reference']}/assessments",
        json={"residual": {"likelihood": 4, "impact": 5}, "rationale": "supplier lost its certification"},
    )
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["residual"]["level"] == "critical"
    assert assessed.json()["assessed_by"] == "write-key"

    again = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert again["level"] == "critical" and again["version"] == 2
    assert again["next_review_at"].startswith((frozen_clock.now + timedelta(days=30)).date().isoformat())

    history = client.get(f"/api/v1/risks/{risk['id']}/assessments").json()["items"]
    assert [h["kind"] for h in history] == ["reassessment", "initial"]
    audit = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]
    assert [a["action"] for a in audit] == ["created", "assessed"]
    assert audit[1]["changes"]["residual_level"] == {"old": "medium", "new": "critical"}
    assert audit[1]["actor"] == "write-key" and audit[1]["note"] == "supplier lost its certification"


def test_field_edits_are_audited_with_old_and_new_values(client: TestClient) -> None:
    risk = _create(client)
    response = client.patch(f"/api/v1/risks/{risk['id']}", json={"owner": "cto", "tags": ["dc"]})
    assert response.status_code == 200 and response.json()["owner"] == "cto"
    entry = client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"][-1]
    assert entry["action"] == "updated"
    assert entry["changes"] == {
        "owner": {"old": "head of infrastructure", "new": "cto"},
        "tags": {"old": ["dc", "facilities"], "new": ["dc"]},
    }


def test_stale_write_is_refused(client: TestClient) -> None:
    risk = _create(client)
    first = client.patch(f"/api/v1/risks/{risk['id']}", json={"title": "A"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    stale = client.patch(f"/api/v1/risks/{risk['id']}", json={"title": "B"}, headers={"If-Match": '"1"'})
    body = assert_problem(stale, 412)
    assert body["current_version"] == 2
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["title"] == "A"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (risk_body(inherent={"likelihood": 0, "impact": 3}), "body.inherent.likelihood"),
        (risk_body(inherent={"likelihood": 7, "impact": 3}), "body.inherent.likelihood"),
        (risk_body(inherent={"likelihood": "high", "impact": 3}), "body.inherent.likelihood"),
        (risk_body(colour="red"), "body.colour"),
        (risk_body(treatment="ignore"), "body.treatment"),
        (risk_body(title=""), "body.title"),
        (risk_body(next_review_at="2027-01-01T00:00:00"), "body.next_review_at"),
        ({k: v for k, v in risk_body().items() if k != "owner"}, "body.owner"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    client: TestClient, engine: Engine, body: dict[str, Any], field: str
) -> None:
    before = row_counts(engine)
    assert_problem(client.post("/api/v1/risks", json=body), 422, field)
    assert row_counts(engine) == before


def test_malformed_json_is_a_problem_not_a_crash(client: TestClient) -> None:
    response = client.post("/api/v1/risks", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422)


def test_unknown_risk_and_bad_references(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/risks/999999"), 404)
    assert_problem(client.get("/api/v1/risks/R-99999"), 404)
    assert_problem(client.get("/api/v1/risks/not-a-risk"), 404)
    assert_problem(client.post("/api/v1/risks/4242/assessments", json={"rationale": "x"}), 404)


def test_invalid_state_change_says_what_is_allowed(client: TestClient, engine: Engine) -> None:
    risk = _create(client)
    assert client.post(f"/api/v1/risks/{risk['id']}/close", json={"reason": "gone"}).json()["status"] == "closed"
    before = row_counts(engine)
    body = assert_problem(client.post(f"/api/v1/risks/{risk['id']}/close", json={"reason": "again"}), 409)
    assert body["allowed"] == ["reopen"]
    assert row_counts(engine) == before
    assert client.post(f"/api/v1/risks/{risk['id']}/reopen", json={"reason": "back"}).json()["status"] == "open"


def test_scores_cannot_be_edited_outside_an_assessment(client: TestClient) -> None:
    risk = _create(client)
    assert_problem(client.patch(f"/api/v1/risks/{risk['id']}", json={"score": 1}), 422, "body.score")


def test_controls_are_part_of_the_risk_and_its_history(client: TestClient) -> None:
    risk = _create(client)
    control = client.post(
        f"/api/v1/risks/{risk['id']}/controls",
        json={"title": "Flood barriers", "owner": "facilities", "due_date": "2027-03-31"},
    )
    assert control.status_code == 201 and control.json()["status"] == "planned"
    cid = control.json()["id"]
    updated = client.patch(f"/api/v1/risks/{risk['id']}/controls/{cid}", json={"status": "implemented"})
    assert updated.json()["status"] == "implemented"
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["controls"][0]["status"] == "implemented"
    actions = [e["action"] for e in client.get(f"/api/v1/risks/{risk['id']}/history").json()["items"]]
    assert actions == ["created", "control.added", "control.updated"]
    assert_problem(client.patch(f"/api/v1/risks/{risk['id']}/controls/999", json={"status": "planned"}), 404)
    assert_problem(client.patch(f"/api/v1/risks/{risk['id']}/controls/{cid}", json={"status": "done"}), 422)


def test_acceptance_above_appetite_needs_an_admin(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> None:
    risk = _create(client, residual=None)
    acceptance = {"approver": "board", "expires_at": (frozen_clock.now + timedelta(days=60)).isoformat()}
    change = {"treatment": "accept", "acceptance": acceptance}
    assert_problem(client.patch(f"/api/v1/risks/{risk['id']}", json=change), 403)
    accepted = client.patch(f"/api/v1/risks/{risk['id']}", json=change, headers=keys.headers("admin"))
    assert accepted.status_code == 200
    assert accepted.json()["acceptance"] == {
        "approver": "board",
        "expires_at": acceptance["expires_at"].replace("+00:00", "Z"),
        "expired": False,
    }


def test_filters_and_text_search(client: TestClient, frozen_clock: FrozenClock) -> None:
    flood = _create(client)
    cyber = _create(
        client, title="Ransomware on file servers", description="Encrypts the shares", category="cyber",
        owner="ciso", inherent={"likelihood": 4, "impact": 5}, residual=None, tags=["ransomware"],
    )  # fmt: skip
    low = _create(
        client,
        title="Parking shortage",
        category="facilities",
        inherent={"likelihood": 1, "impact": 1},
        residual=None,
        tags=[],
    )

    def ids(**params: str | bool) -> list[int]:
        response = client.get("/api/v1/risks", params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert ids(category="cyber") == [cyber["id"]]
    assert ids(level="critical") == [cyber["id"]]
    assert ids(owner="ciso") == [cyber["id"]]
    assert ids(tag="FACILITIES") == [flood["id"]]
    assert ids(q="ENCRYPT") == [cyber["id"]]
    assert ids(q="100%") == []
    problem = assert_problem(client.get("/api/v1/risks", params={"q": "dc"}), 422, "query.q")
    assert "at least 3 characters" in problem["detail"]
    assert ids(sort="-score") == [cyber["id"], flood["id"], low["id"]]
    assert ids(sort="next_review_at") == [cyber["id"], flood["id"], low["id"]]
    client.post(f"/api/v1/risks/{low['id']}/close", json={"reason": "solved"})
    assert ids(status="closed") == [low["id"]]
    frozen_clock.advance(timedelta(days=31))
    assert ids(overdue=True) == [cyber["id"]]
    assert_problem(client.get("/api/v1/risks", params={"sort": "colour"}), 422, "query.sort")
    assert_problem(client.get("/api/v1/risks", params={"limit": 0}), 422, "query.limit")


@pytest.mark.parametrize("sort", ["-score", "score", "next_review_at", "-updated_at", "id"])
def test_cursor_pages_stay_correct_while_rows_are_added(
    client: TestClient, frozen_clock: FrozenClock, sort: str
) -> None:
    for i in range(7):
        frozen_clock.advance(timedelta(minutes=1))
        _create(client, title=f"risk {i}", inherent={"likelihood": 1 + i % 5, "impact": 2}, residual=None)
    seen: list[int] = []
    page = client.get("/api/v1/risks", params={"limit": 3, "sort": sort}).json()
    seen += [r["id"] for r in page["items"]]
    _create(client, title="added while paging", inherent={"likelihood": 5, "impact": 5}, residual=None)
    while page["next_cursor"]:
        page = client.get("/api/v1/risks", params={"limit": 3, "sort": sort, "cursor": page["next_cursor"]}).json()
        seen += [r["id"] for r in page["items"]]
    originals = set(range(1, 8))
    assert originals <= set(seen), "no row that existed when paging began may be skipped"
    assert len(seen) == len(set(seen)), "no row may be returned twice"


def test_malformed_or_foreign_cursor_is_a_422(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/risks", params={"cursor": "%%%"}), 422, "query.cursor")
    for _ in range(3):
        _create(client)
    cursor = client.get("/api/v1/risks", params={"limit": 1, "sort": "score"}).json()["next_cursor"]
    assert_problem(client.get("/api/v1/risks", params={"cursor": cursor, "sort": "-updated_at"}), 422, "query.cursor")
    assert_problem(client.get("/api/v1/risks/1/assessments", params={"cursor": cursor}), 422, "query.cursor")


def test_publish_matrix_and_rescore_through_the_api(client: TestClient, keys: Keys) -> None:
    risk = _create(client, inherent={"likelihood": 1, "impact": 5}, residual=None)
    spec = client.get("/api/v1/matrices/current").json()["spec"]
    spec["name"] = "Stricter"
    spec["cells"][0][4] = "high"
    assert_problem(client.post("/api/v1/matrices", json=spec), 403)
    published = client.post("/api/v1/matrices", json=spec, headers=keys.headers("admin"))
    assert published.status_code == 201 and published.json()["version"] == 2
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["level"] == "medium"
    rescored = client.post(
        "/api/v1/matrices/2/rescore", json={"rationale": "new method"}, headers=keys.headers("admin")
    )
    assert rescored.json()["level_changes"] == [{"risk": risk["reference"], "old_level": "medium", "new_level": "high"}]
    assert client.get(f"/api/v1/risks/{risk['id']}").json()["matrix_version"] == 2
    assert_problem(
        client.post("/api/v1/matrices/1/rescore", json={"rationale": "back"}, headers=keys.headers("admin")), 409
    )
    spec["cells"][0][0] = "extreme"
    assert_problem(client.post("/api/v1/matrices", json=spec, headers=keys.headers("admin")), 422)


# ---- filters ----


def _ids(client: TestClient, params: list[tuple[str, str]] | dict[str, str]) -> list[int]:
    response = client.get("/api/v1/risks", params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


def _small_register(client: TestClient) -> dict[str, dict[str, Any]]:
    return {
        "flood": _create(client),  # medium, operational, head of infrastructure, mitigate
        "ransomware": _create(
            client, title="Ransomware", category="Cyber", owner="CISO", inherent={"likelihood": 4, "impact": 5},
            residual=None, treatment="transfer", tags=["ransomware"],
        ),
        "phishing": _create(
            client, title="Phishing", category="cyber", owner="ciso", inherent={"likelihood": 3, "impact": 4},
            residual=None, tags=["email"],
        ),
        "parking": _create(
            client, title="Parking", category="facilities", owner="office manager",
            inherent={"likelihood": 1, "impact": 1}, residual=None, treatment="avoid", tags=[],
        ),
    }  # fmt: skip


def test_a_repeated_filter_means_any_of_its_values(client: TestClient) -> None:
    r = {name: risk["id"] for name, risk in _small_register(client).items()}
    assert _ids(client, [("level", "high"), ("level", "critical")]) == [r["ransomware"], r["phishing"]]
    assert _ids(client, [("treatment", "transfer"), ("treatment", "avoid")]) == [r["ransomware"], r["parking"]]
    assert _ids(client, [("category", "facilities"), ("category", "operational")]) == [r["flood"], r["parking"]]
    assert _ids(client, [("owner", "office manager"), ("owner", "ciso")]) == [
        r["ransomware"],
        r["phishing"],
        r["parking"],
    ]
    assert _ids(client, [("tag", "EMAIL"), ("tag", "dc")]) == [r["phishing"], r["flood"]]
    assert _ids(client, [("status", "open"), ("status", "closed")]) == _ids(client, {})
    # different filters still narrow each other
    assert _ids(client, [("category", "cyber"), ("level", "high"), ("level", "medium")]) == [r["phishing"]]


def test_owner_and_category_match_whatever_the_case(client: TestClient) -> None:
    r = {name: risk["id"] for name, risk in _small_register(client).items()}
    assert _ids(client, {"owner": "Ciso"}) == [r["ransomware"], r["phishing"]]
    assert _ids(client, {"owner": " CISO "}) == [r["ransomware"], r["phishing"]]
    assert _ids(client, {"category": "CYBER"}) == [r["ransomware"], r["phishing"]]
    assert _ids(client, {"owner": "cis"}) == []  # whole names, not parts


def test_owner_and_category_are_stored_without_surrounding_spaces(client: TestClient) -> None:
    risk = _create(client, owner="  Jane Doe ", category=" cyber\t")
    assert (risk["owner"], risk["category"]) == ("Jane Doe", "cyber")
    changed = client.patch(f"/api/v1/risks/{risk['id']}", json={"owner": " ciso  ", "category": "  people"}).json()
    assert (changed["owner"], changed["category"]) == ("ciso", "people")
    assert _ids(client, {"owner": "CISO"}) == [risk["id"]]
    assert_problem(client.post("/api/v1/risks", json=risk_body(owner="   ")), 422, "body.owner")
    assert_problem(client.patch(f"/api/v1/risks/{risk['id']}", json={"category": " "}), 422, "body.category")


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("level", "extreme", ["low", "medium", "high", "critical"]),
        ("status", "archived", ["open", "closed"]),
        ("treatment", "ignore", ["avoid", "mitigate", "transfer", "accept", "exploit", "enhance", "share"]),
    ],
)
def test_an_unknown_filter_value_is_a_422_listing_the_allowed_values(
    client: TestClient, name: str, value: str, allowed: list[str]
) -> None:
    _create(client)
    body = assert_problem(client.get("/api/v1/risks", params=[(name, allowed[0]), (name, value)]), 422, f"query.{name}")
    (error,) = body["errors"]
    assert error["allowed"] == allowed and value in error["message"]


def test_levels_of_every_published_matrix_are_known(client: TestClient, keys: Keys) -> None:
    risk = _create(client, inherent={"likelihood": 5, "impact": 5}, residual=None)
    assert_problem(client.get("/api/v1/risks", params={"level": "very-high"}), 422, "query.level")
    nist = yaml.safe_load(BUILTIN_MATRICES["nist-sp800-30"].read_text())
    assert client.post("/api/v1/matrices", json=nist, headers=keys.headers("admin")).status_code == 201
    assert _ids(client, {"level": "very-high"}) == []  # known now, though no risk is rescored yet
    assert _ids(client, [("level", "critical"), ("level", "very-high")]) == [risk["id"]]


@pytest.mark.parametrize("sort", ["-score", "next_review_at", "id"])
def test_cursor_pages_through_a_filtered_list(client: TestClient, frozen_clock: FrozenClock, sort: str) -> None:
    for i in range(9):
        frozen_clock.advance(timedelta(minutes=1))
        _create(
            client, title=f"risk {i}", owner=("CISO", "cto", "ciso")[i % 3],
            inherent={"likelihood": 2 + i % 4, "impact": 4}, residual=None,
        )  # fmt: skip
    params = [("owner", "ciso"), ("level", "high"), ("level", "critical"), ("sort", sort)]
    whole = _ids(client, params)
    assert len(whole) >= 3
    seen: list[int] = []
    page = client.get("/api/v1/risks", params=[*params, ("limit", "2")]).json()
    seen += [r["id"] for r in page["items"]]
    while page["next_cursor"]:
        page = client.get("/api/v1/risks", params=[*params, ("limit", "2"), ("cursor", page["next_cursor"])]).json()
        seen += [r["id"] for r in page["items"]]
    assert seen == whole


def test_empty_query_parameters_are_absent(client: TestClient) -> None:
    risk = _create(client)
    response = client.get("/api/v1/risks?cursor=&level=&status=&owner=&overdue=&limit=&q=&sort=&tag=")
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["items"]] == [risk["id"]]
    assert [r["id"] for r in client.get("/api/v1/risks?level=&level=medium").json()["items"]] == [risk["id"]]
    for listing in ("assessments", "history"):
        assert client.get(f"/api/v1/risks/{risk['id']}/{listing}?cursor=").status_code == 200


# ---- closed risks ----


def test_a_closed_risk_cannot_be_edited(client: TestClient, engine: Engine) -> None:
    risk = _create(client)
    control = client.post(f"/api/v1/risks/{risk['id']}/controls", json={"title": "Barriers", "owner": "facilities"})
    client.post(f"/api/v1/risks/{risk['id']}/close", json={"reason": "site sold"})
    before = row_counts(engine)
    attempts = [
        client.patch(f"/api/v1/risks/{risk['id']}", json={"title": "Renamed"}),
        client.post(f"/api/v1/risks/{risk['id']}/controls", json={"title": "Pumps", "owner": "facilities"}),
        client.patch(f"/api/v1/risks/{risk['id']}/controls/{control.json()['id']}", json={"status": "implemented"}),
    ]
    for response in attempts:
        body = assert_problem(response, 409)
        assert body["allowed"] == ["reopen"] and body["type"].endswith("/invalid-transition")
    assert row_counts(engine) == before
    closed = client.get(f"/api/v1/risks/{risk['id']}").json()
    assert closed["title"] == risk["title"] and closed["controls"][0]["status"] == "planned"
    client.post(f"/api/v1/risks/{risk['id']}/reopen", json={"reason": "site kept"})
    assert client.patch(f"/api/v1/risks/{risk['id']}", json={"title": "Renamed"}).json()["title"] == "Renamed"

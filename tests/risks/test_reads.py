"""The read model answers byte for byte what the ORM path (presentation.present, serialised by FastAPI) answers."""

import json
from datetime import timedelta
from itertools import product
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlmodel import Session

from riskops.errors import NotFound, Unprocessable
from riskops.pagination import Page
from riskops.risks import queries, reads, service
from riskops.risks.models import RiskPublic
from riskops.risks.presentation import present
from tests.conftest import FrozenClock, Keys
from tests.helpers import risk_body

# FastAPI writes a response model with its TypeAdapter's dump_json: these are the bytes the ORM routes answered.
_ONE = TypeAdapter(RiskPublic)
_PAGE = TypeAdapter(Page[RiskPublic])
SORTS: tuple[queries.SortKey, ...] = get_args(queries.SortKey)
FILTERS: list[dict[str, Any]] = [
    {},
    {"status": ["open"]},
    {"status": ["closed"]},
    {"status": ["open", "closed"]},
    {"level": ["high"]},
    {"level": ["critical", "low"]},
    {"treatment": ["accept"]},
    {"treatment": ["mitigate", "transfer"]},
    {"category": ["CYBER"]},
    {"category": ["cyber", "Facilities"]},
    {"owner": ["ciso"]},
    {"owner": ["Ciso", "head of infrastructure"]},
    {"tag": ["DC"]},
    {"tag": ["dc", "ransomware"]},
    {"overdue": True},
    {"overdue": False},
    {"q": "flood"},
    {"q": "ÜBER"},
    {"q": "100%"},
    {"status": ["open"], "level": ["high"], "overdue": False, "tag": ["dc"]},
]


def _create(client: TestClient, keys: Keys | None = None, **overrides: Any) -> int:
    headers = keys.headers("admin") if keys else None
    response = client.post("/api/v1/risks", json=risk_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    risk_id: int = response.json()["id"]
    return risk_id


def _ok(response: Any) -> None:
    assert response.status_code in (200, 201), response.text


@pytest.fixture
def register(client: TestClient, keys: Keys, frozen_clock: FrozenClock) -> list[int]:
    """Risks with and without tags, controls, residual ratings and acceptance (lapsed and current), closed ones,
    overdue ones, reassessed ones, text beyond ASCII and timestamps with and without microseconds."""
    ids: list[int] = []
    # A library control several risks share, of another type, found partially effective by a test.
    shared = {"title": "Access review ✓", "owner": "ciso", "type": "detective", "test_interval_days": 90}
    _ok(client.post("/api/v1/controls", json=shared))
    test = {
        "tested_on": "2026-06-30",
        "tester": "audit",
        "result": "partially-effective",
        "evidence_url": "https://e.x",
    }
    _ok(client.post("/api/v1/controls/C-0001/tests", json=test))
    for i in range(14):
        # Every other step lands off the whole second, so both datetime forms (with and without a fraction) occur.
        frozen_clock.advance(timedelta(minutes=7, microseconds=123450 * (i % 2)))
        overrides: dict[str, Any] = {
            "title": f"Flood {i}" if i % 3 == 0 else f'Überschwemmung "{i}" — 🌊\nline two\t\\ </script>',
            "description": "" if i % 4 == 0 else f"River flood #{i} takes 100% of the site",
            "category": ("operational", "Cyber", "facilities")[i % 3],
            "owner": ("CISO", "head of infrastructure", "cto")[i % 3],
            "inherent": {"likelihood": 1 + i % 5, "impact": 1 + (i * 2) % 5},
            "residual": None if i % 2 else {"likelihood": 1, "impact": 1 + i % 3},
            "treatment": ("mitigate", "transfer", "avoid", "accept")[i % 4],
            "tags": [["dc", "Facilities", "b-c", "bc", "a"], [], ["ransomware"], ["dc"]][i % 4],
        }
        if i % 4 == 3:
            overrides["acceptance"] = {
                "approver": "board",
                "expires_at": (frozen_clock.now + timedelta(days=2 + i, microseconds=i)).isoformat(),
            }
        if i % 5 == 1:
            overrides["next_review_at"] = (frozen_clock.now + timedelta(days=i - 5)).isoformat()
        risk_id = _create(client, keys if i % 4 == 3 else None, **overrides)
        ids.append(risk_id)
        for c in range(i % 3):
            control = {"title": f"Control {c} ✓", "owner": "facilities", "status": ("planned", "implemented")[c]}
            if c:
                control["due_date"] = "2026-09-30"
            added = client.post(f"/api/v1/risks/{risk_id}/controls", json=control)
            _ok(added)
            if c and i % 2:
                frozen_clock.advance(timedelta(seconds=1, microseconds=5))
                _ok(client.patch(f"/api/v1/risks/{risk_id}/controls/{added.json()['id']}", json={"status": "planned"}))
        if i % 5 == 4:
            _ok(client.post(f"/api/v1/risks/{risk_id}/controls", json={"control_id": 1, "status": "in-progress"}))
        if i % 3 == 1:
            change = {"residual": {"likelihood": 2, "impact": 2}, "rationale": "Sprinklers fitted"}
            _ok(client.post(f"/api/v1/risks/{risk_id}/assessments", json=change))
        if i % 6 == 5:
            _ok(client.post(f"/api/v1/risks/{risk_id}/close", json={"reason": "Site sold"}))
    # Some acceptances lapse, some reviews fall due.
    frozen_clock.advance(timedelta(days=8))
    return ids


def _orm_risk(session: Session, risk_id: int) -> tuple[bytes, str]:
    risk = service.get_risk(session, risk_id)
    return _ONE.dump_json(present(risk)), service.etag(risk)


def _orm_page(session: Session, filters: queries.RiskFilter, **options: Any) -> bytes:
    rows, next_cursor = queries.list_risks(session, filters, **options)
    return _PAGE.dump_json(Page(items=[present(r) for r in rows], next_cursor=next_cursor))


def test_a_risk_reads_as_the_orm_shows_it(engine: Engine, register: list[int]) -> None:
    with Session(engine) as session:
        for risk_id in register:
            body, etag = _orm_risk(session, risk_id)
            read = reads.read_risk(session, risk_id)
            assert json.loads(read.body) == json.loads(body)
            assert read.body == body
            assert read.etag == etag
        kinds = [json.loads(reads.read_risk(session, risk_id).body) for risk_id in register]
    # The register holds every case the read model shapes differently.
    assert any(k["acceptance"] and k["acceptance"]["expired"] for k in kinds)
    assert any(k["acceptance"] and not k["acceptance"]["expired"] for k in kinds)
    assert {k["residual"] is None for k in kinds} == {True, False}
    assert {k["overdue"] for k in kinds} == {True, False}
    assert {k["status"] for k in kinds} == {"open", "closed"}
    assert {len(k["controls"]) for k in kinds} == {0, 1, 2}
    controls = [c for k in kinds for c in k["controls"]]
    assert {(c["type"], c["effectiveness"]) for c in controls} == {
        ("preventive", "untested"), ("detective", "partially-effective"),
    }  # fmt: skip
    assert len({k["version"] for k in kinds}) > 1
    assert any(len(k["tags"]) > 2 for k in kinds)


def test_a_missing_risk_is_the_same_404(engine: Engine, register: list[int]) -> None:
    with Session(engine) as session:
        for risk_id in (max(register) + 1, 0, 2**31, 2**63):
            with pytest.raises(NotFound) as orm:
                service.get_risk(session, risk_id)
            with pytest.raises(NotFound) as read:
                reads.read_risk(session, risk_id)
            assert str(read.value) == str(orm.value)


@pytest.mark.parametrize("sort", SORTS)
def test_every_filter_and_sort_pages_as_the_orm_does(
    engine: Engine, register: list[int], sort: queries.SortKey
) -> None:
    with Session(engine) as session:
        for spec, limit in product(FILTERS, (3, 50)):
            filters = queries.RiskFilter(**spec)
            cursor: str | None = None
            pages = 0
            while True:
                options: dict[str, Any] = {"sort": sort, "cursor": cursor, "limit": limit}
                expected = _orm_page(session, filters, **options)
                body = reads.read_page(session, filters, **options)
                assert json.loads(body) == json.loads(expected), (spec, options)
                assert body == expected, (spec, options)
                pages += 1
                assert pages <= len(register) // limit + 1, (spec, options)  # a walk must end
                cursor = json.loads(body)["next_cursor"]
                if cursor is None:
                    break
        # The filters above are not all empty: the walk compared real rows.
        assert len(json.loads(reads.read_page(session, queries.RiskFilter(), sort=sort, limit=50))["items"]) == 14


@pytest.mark.parametrize(
    ("spec", "cursor"),
    [
        ({"status": ["pending"]}, None),
        ({"level": ["severe"], "treatment": ["ignore"]}, None),
        ({}, "not a cursor!"),
        ({}, "WyJzY29yZSIsMSwxXQ"),  # ["score",1,1]: another sort's cursor
        ({}, "WyItc2NvcmUiLCJ4IiwxXQ"),  # ["-score","x",1]: a value of the wrong kind
        ({}, "WyItc2NvcmUiLDEsIjEiXQ"),  # ["-score",1,"1"]: an id that is no number
    ],
)
def test_bad_filters_and_cursors_are_the_same_422(
    engine: Engine, register: list[int], spec: dict[str, Any], cursor: str | None
) -> None:
    filters = queries.RiskFilter(**spec)
    with Session(engine) as session:
        with pytest.raises(Unprocessable) as orm:
            queries.list_risks(session, filters, sort="-score", cursor=cursor)
        with pytest.raises(Unprocessable) as read:
            reads.read_page(session, filters, sort="-score", cursor=cursor)
    assert (str(read.value), read.value.__dict__) == (str(orm.value), orm.value.__dict__)


def test_the_routes_answer_the_read_model_bytes(client: TestClient, engine: Engine, register: list[int]) -> None:
    with Session(engine) as session:
        for risk_id in register[:6]:
            body, etag = _orm_risk(session, risk_id)
            for ref in (str(risk_id), f"R-{risk_id:04d}"):
                response = client.get(f"/api/v1/risks/{ref}")
                assert response.status_code == 200
                assert response.content == body
                assert response.headers["etag"] == etag
                assert response.headers["content-type"] == "application/json"
        params: list[tuple[str, str | int]] = [("status", "open"), ("tag", "dc"), ("tag", "ransomware")]
        params += [("sort", "-updated_at"), ("limit", 2)]
        filters = queries.RiskFilter(status=["open"], tag=["dc", "ransomware"])
        cursor = None
        while True:
            response = client.get("/api/v1/risks", params=params + ([("cursor", cursor)] if cursor else []))
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.content == _orm_page(session, filters, sort="-updated_at", cursor=cursor, limit=2)
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
    assert client.get("/api/v1/risks/99999").status_code == 404
    assert client.get("/api/v1/risks?status=pending").status_code == 422

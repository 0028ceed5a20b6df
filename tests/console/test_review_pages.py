"""The quarterly reviews in the console: the cycles, opening and closing one (admins only), a cycle's page, and an
owner's reviews one after another, each form refused in the API's words with what was typed kept."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.apikeys.models import Role
from riskops.reviews import cycles
from riskops.users.service import CSRF_FIELD
from tests.conftest import Keys
from tests.console.conftest import Signed
from tests.helpers import risk_body, row_counts

OWNER = "owner@example.org"
SCRIPT_TITLE = '<script>alert("owned")</script>'
ESCAPED_TITLE = "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;"


def _current() -> str:
    return cycles.cycle_id_for(datetime.now(UTC), 1)  # calendar quarters, the default


def _risks(client: TestClient, *titles: str, owner: str = OWNER) -> list[str]:
    references = []
    for title in titles:
        answer = client.post("/api/v1/risks", json=risk_body(title=title, owner=owner))
        assert answer.status_code == 201, answer.text
        references.append(answer.json()["reference"])
    return references


def _open(client: TestClient, keys: Keys) -> str:
    cycle = _current()
    answer = client.post("/api/v1/reviews", json={"cycle": cycle}, headers=keys.headers("admin"))
    assert answer.status_code == 201, answer.text
    return cycle


def _progress(client: TestClient, cycle: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/reviews/{cycle}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _next_risk(page: str) -> str | None:
    found = re.search(r'<form method="post" action="/console/reviews/[^/]+/risks/(R-\d+)"', page)
    return found.group(1) if found else None


def test_an_admin_opens_a_cycle_and_is_told_in_the_apis_words_what_was_wrong(
    client: TestClient, signed: Callable[..., Signed]
) -> None:
    _risks(client, "Flood", owner="someone")
    admin = signed(Role.admin)
    page = admin.client.get("/console/reviews")
    assert page.status_code == 200 and "Open the review cycle" in page.text
    assert f'value="{_current()}"' in page.text  # the quarter under way, suggested
    refused = admin.post("/console/reviews", {"cycle": "2026Q9"})
    assert refused.status_code == 422 and 'value="2026Q9"' in refused.text
    assert "cycle: String should match pattern" in refused.text and 'aria-invalid="true"' in refused.text
    early = admin.post("/console/reviews", {"cycle": "2999Q1"})
    assert early.status_code == 409 and "can be opened once its quarter starts" in early.text
    assert 'value="2999Q1"' in early.text
    opened = admin.post("/console/reviews", {"cycle": _current()})
    assert opened.status_code == 303 and opened.headers["location"] == f"/console/reviews/{_current()}"
    assert _progress(client, _current())["state"] == "open"
    again = admin.post("/console/reviews", {"cycle": _current()})
    assert again.status_code == 409 and f"Review cycle {_current()} was opened already." in again.text
    listed = admin.client.get("/console/reviews").text
    assert f'href="/console/reviews/{_current()}"' in listed and "0 of 1" in listed and "someone" in listed


def test_a_reader_sees_no_open_or_close_and_is_refused_them(
    client: TestClient, signed: Callable[..., Signed], keys: Keys, engine: Engine
) -> None:
    [risk] = _risks(client, "Flood")
    cycle = _open(client, keys)
    reader = signed(Role.read, email=OWNER)
    mine = reader.client.get(f"/console/reviews/{cycle}/mine").text
    assert "Recording a review needs the write role." in mine and _next_risk(mine) is None
    before = row_counts(engine)
    refused = reader.post(f"/console/reviews/{cycle}/risks/{risk}", {"outcome": "reviewed", "comment": "ok"})
    assert refused.status_code == 403
    assert row_counts(engine) == before
    for role in (Role.read, Role.write):
        user = signed(role)
        listed = user.client.get("/console/reviews")
        assert listed.status_code == 200 and f'href="/console/reviews/{cycle}"' in listed.text
        assert "Open the review cycle" not in listed.text and 'action="/console/reviews"' not in listed.text
        page = user.client.get(f"/console/reviews/{cycle}")
        assert page.status_code == 200 and "Close the cycle" not in page.text
        before = row_counts(engine)
        assert user.post("/console/reviews", {"cycle": "2020Q1"}).status_code == 403
        assert user.post(f"/console/reviews/{cycle}/close").status_code == 403
        assert row_counts(engine) == before and _progress(client, cycle)["state"] == "open"


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, signed: Callable[..., Signed], keys: Keys, engine: Engine
) -> None:
    [risk] = _risks(client, "Flood")
    cycle = _open(client, keys)
    admin = signed(Role.admin, email=OWNER)
    before = row_counts(engine)
    for url, data in (
        (f"/console/reviews/{cycle}/close", {}),
        ("/console/reviews", {"cycle": "2020Q1"}),
        (f"/console/reviews/{cycle}/risks/{risk}", {"outcome": "reviewed", "comment": "fine"}),
    ):
        assert admin.client.post(url, data=data).status_code == 403
        assert admin.client.post(url, data={**data, CSRF_FIELD: "not-the-token"}).status_code == 403
    assert row_counts(engine) == before and _progress(client, cycle)["progress"][0]["reviewed"] == 0


def test_an_owner_reviews_their_risks_one_after_another(
    client: TestClient, signed: Callable[..., Signed], keys: Keys
) -> None:
    first, second, third = _risks(client, "Flood", "Fire", "Fraud")
    [elsewhere] = _risks(client, "Not mine", owner="someone else")
    cycle = _open(client, keys)
    owner = signed(Role.write, email=OWNER)
    page = owner.client.get(f"/console/reviews/{cycle}/mine").text
    assert _next_risk(page) == first and "Reviewed 0 of 3." in page and elsewhere not in page
    assert "What this review asks" in page and 'id="score-table"' in page

    done = owner.post(f"/console/reviews/{cycle}/risks/{first}", {"outcome": "reviewed", "comment": "Still right"})
    assert done.status_code == 303 and done.headers["location"] == f"/console/reviews/{cycle}/mine?done={first}"
    page = owner.client.get(done.headers["location"]).text
    assert f"{first} recorded: Reviewed." in page and _next_risk(page) == second and "Reviewed 1 of 3." in page

    reassessed = owner.post(
        f"/console/reviews/{cycle}/risks/{second}",
        {"outcome": "reassessed", "comment": "Better walls", "inherent.likelihood": "2", "inherent.impact": "3"},
    )
    assert reassessed.status_code == 303
    rating = client.get(f"/api/v1/risks/{second}").json()["inherent"]
    assert (rating["likelihood"], rating["impact"], rating["level"]) == (2, 3, "medium")
    page = owner.client.get(reassessed.headers["location"]).text
    assert _next_risk(page) == third

    closing = owner.post(f"/console/reviews/{cycle}/risks/{third}", {"outcome": "proposed-closure", "comment": "Gone"})
    assert closing.status_code == 303
    page = owner.client.get(closing.headers["location"]).text
    assert "All done" in page and _next_risk(page) is None and "Reviewed 3 of 3." in page
    assert page.count("Proposed for closure") == 2  # the notice and the row
    [mine] = [p for p in _progress(client, cycle)["progress"] if p["owner"] == OWNER]
    assert (mine["risks"], mine["reviewed"], mine["proposed_closure"]) == (3, 3, 1)


def test_a_refused_review_shows_the_apis_words_and_keeps_what_was_typed(
    client: TestClient, signed: Callable[..., Signed], keys: Keys
) -> None:
    first, second = _risks(client, "Flood", "Fire")
    cycle = _open(client, keys)
    owner = signed(Role.write, email=OWNER)
    url = f"/console/reviews/{cycle}/risks/{second}"
    no_scores = owner.post(url, {"outcome": "reassessed", "comment": "My own words"})
    assert no_scores.status_code == 422 and "A reassessment needs new scores." in no_scores.text
    assert "My own words</textarea>" in no_scores.text and _next_risk(no_scores.text) == second  # the one posted
    assert re.search(r'value="reassessed" required checked', no_scores.text)
    assert 'id="e-inherent"' in no_scores.text and "inherent or residual" in no_scores.text
    outside = owner.post(url, {"outcome": "reassessed", "comment": "Worse", "inherent.likelihood": "9",
                               "inherent.impact": "2"})  # fmt: skip
    assert outside.status_code == 422 and "must be between 1 and 5" in outside.text
    assert '<option value="2" selected>' in outside.text  # the impact chosen is kept
    scores_not_asked = owner.post(url, {"outcome": "reviewed", "comment": "Same", "residual.likelihood": "1",
                                        "residual.impact": "1"})  # fmt: skip
    assert scores_not_asked.status_code == 422 and "New scores go with outcome" in scores_not_asked.text
    blank = owner.post(url, {"outcome": "reviewed", "comment": " "})
    assert blank.status_code == 422 and 'id="e-comment"' in blank.text and "Field required" in blank.text
    word = owner.post(url, {"outcome": "reassessed", "comment": "x", "inherent.likelihood": "two"})
    assert word.status_code == 422 and "inherent.likelihood: Input should be a valid integer" in word.text
    assert _progress(client, cycle)["progress"][0]["reviewed"] == 0


def test_closing_a_cycle_freezes_it_and_offers_its_files(
    client: TestClient, signed: Callable[..., Signed], keys: Keys
) -> None:
    [risk] = _risks(client, "Flood")
    _risks(client, "Markup owner", owner="<b>boss</b>")
    cycle = _open(client, keys)
    admin = signed(Role.admin, email=OWNER)
    page = admin.client.get(f"/console/reviews/{cycle}").text
    assert "Close the cycle" in page and "data-confirm=" in page and "/export?format=" not in page
    assert "&lt;b&gt;boss&lt;/b&gt;" in page and "<b>boss</b>" not in page
    assert re.search(r'data-movement="added">2<', page)  # no earlier cycle: the whole register is added
    assert f'href="/console/reviews/{cycle}/mine"' in page and "My reviews: 1 of 1 to do" in page
    reviewed = admin.post(f"/console/reviews/{cycle}/risks/{risk}", {"outcome": "reviewed", "comment": "ok"})
    assert reviewed.status_code == 303
    closed = admin.post(f"/console/reviews/{cycle}/close")
    assert closed.status_code == 303 and closed.headers["location"] == f"/console/reviews/{cycle}"
    assert _progress(client, cycle)["state"] == "closed"
    page = admin.client.get(f"/console/reviews/{cycle}").text
    assert 'data-state="closed"' in page and "Close the cycle" not in page
    for file_format in ("json", "csv", "xlsx", "pdf"):
        link = f"/api/v1/reviews/{cycle}/export?format={file_format}"
        assert f'href="{link}"' in page
        assert admin.client.get(link).status_code == 200  # the session's cookie opens the API's GETs
    again = admin.post(f"/console/reviews/{cycle}/close")
    assert again.status_code == 409 and f"Review cycle {cycle} was closed at" in again.text
    mine = admin.client.get(f"/console/reviews/{cycle}/mine").text
    assert "This cycle is closed" in mine and '<form method="post" action="/console/reviews/' not in mine
    assert admin.client.get("/console/reviews/2001Q1").status_code == 404


def test_a_risk_title_is_text_on_the_review_pages(
    client: TestClient, signed: Callable[..., Signed], keys: Keys
) -> None:
    [risk] = _risks(client, SCRIPT_TITLE)
    cycle = _open(client, keys)
    owner = signed(Role.write, email=OWNER)
    for url in (f"/console/reviews/{cycle}/mine", "/console/reviews", f"/console/reviews/{cycle}"):
        page = owner.client.get(url)
        assert page.status_code == 200 and SCRIPT_TITLE not in page.text
    page = owner.client.get(f"/console/reviews/{cycle}/mine").text
    assert ESCAPED_TITLE in page
    recorded = owner.post(f"/console/reviews/{cycle}/risks/{risk}", {"outcome": "reviewed", "comment": SCRIPT_TITLE})
    assert recorded.status_code == 303
    page = owner.client.get(recorded.headers["location"]).text
    assert page.count(ESCAPED_TITLE) == 1 and SCRIPT_TITLE not in page

"""Key risk indicators in the console: the dashboard lists those in red or amber with the risks they inform, and a
risk's page shows its indicators with status, last value and chart; user text shown as text; in English and Chinese."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from riskops.apikeys.models import Role
from tests.console.conftest import Signed
from tests.kris.helpers import add_kri, add_risk

SCRIPT = '<script>alert("owned")</script>'


def _push(client: TestClient, ref: str, *values: float) -> None:
    start = datetime.now(UTC) - timedelta(hours=len(values))
    body = {"values": [{"at": (start + timedelta(hours=i)).isoformat(), "value": v} for i, v in enumerate(values)]}
    assert client.post(f"/api/v1/kris/{ref}/values", json=body).status_code == 200


def test_the_dashboard_lists_red_and_amber_kris_with_their_risks(
    client: TestClient, signed: Callable[..., Signed]
) -> None:
    risk = add_risk(client, title="Customer accounts taken over")
    add_kri(client, name=SCRIPT, risks=[risk["reference"]])
    add_kri(client, name="Patch latency", risks=[risk["reference"]])
    add_kri(client, name="Phishing clicks")
    _push(client, "K-0001", 20, 130)
    _push(client, "K-0002", 60)
    _push(client, "K-0003", 10)
    page = signed(Role.read).client.get("/console/").text
    assert 'data-kri="K-0001"' in page and 'data-kri="K-0002"' in page and 'data-kri="K-0003"' not in page
    assert page.index('data-kri="K-0001"') < page.index('data-kri="K-0002"')  # red first
    assert SCRIPT not in page and "&lt;script&gt;" in page
    assert f'href="/console/risks/{risk["reference"]}"' in page
    chinese = signed(Role.read, language="zh-CN").client.get("/console/").text
    assert "处于红色或琥珀色的关键风险指标" in chinese and "红色" in chinese


def test_a_risk_page_shows_its_kris_with_status_value_and_chart(
    client: TestClient, signed: Callable[..., Signed]
) -> None:
    risk = add_risk(client, title="Customer accounts taken over")
    add_kri(client, name=SCRIPT, unit="per minute", risks=[risk["reference"]])
    _push(client, "K-0001", 20, 60, 130)
    page = signed(Role.read).client.get(f"/console/risks/{risk['reference']}").text
    assert 'data-kri="K-0001"' in page and 'data-status="red"' in page and "130 per minute" in page
    assert page.count('class="threshold-red"') == 1 and "<polyline" in page
    assert SCRIPT not in page and "&lt;script&gt;" in page
    unlinked = add_risk(client, title="Another")
    assert (
        "No indicator informs this risk."
        in signed(Role.read).client.get(f"/console/risks/{unlinked['reference']}").text
    )


def test_a_retired_kri_leaves_the_dashboard_and_shows_as_retired_on_its_risk(
    client: TestClient, signed: Callable[..., Signed]
) -> None:
    risk = add_risk(client, title="Customer accounts taken over")
    add_kri(client, name="Patch latency", risks=[risk["reference"]])
    _push(client, "K-0001", 130)
    assert client.patch("/api/v1/kris/K-0001", json={"retired": True}).status_code == 200
    reader = signed(Role.read).client
    assert 'data-kri="K-0001"' not in reader.get("/console/").text
    page = reader.get(f"/console/risks/{risk['reference']}").text
    assert 'data-kri="K-0001"' in page and "data-retired" in page and "(retired)" in page
    assert "(已停用)" in signed(Role.read, language="zh-CN").client.get(f"/console/risks/{risk['reference']}").text

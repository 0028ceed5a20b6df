"""GET /metrics: Prometheus text that prometheus_client's own parser reads; request series by route template;
the database's figures moving with a worker tick, a delivery, an alert, an incident and the clock; who may scrape."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from riskops.app import create_app
from riskops.config import Settings
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem
from tests.integrations.support import bearer, make_integration
from tests.receiver import receiver
from tests.webhooks.support import create_risk, subscribe

TOKEN = "metrics-token-for-the-tests-0123456789"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
Samples = list[tuple[str, dict[str, str], float]]


@pytest.fixture
def app_client(engine: Engine, keys: Keys) -> Iterator[TestClient]:
    """The app with a metrics token and no scheduler, authenticated as a writer unless a test says otherwise."""
    settings = Settings(scheduler_enabled=False, webhook_allowed_networks="127.0.0.0/8", metrics_token=TOKEN)
    with TestClient(create_app(settings, engine=engine), headers=keys.headers("write")) as client:
        yield client


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> Samples:
    response = client.get("/metrics", headers=headers or SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = text_string_to_metric_families(response.text)
    return [(s.name, s.labels, s.value) for family in families for s in family.samples]


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample named `name` with exactly these labels (`le` aside); 0 where the series does not exist."""
    found = [v for n, ls, v in samples if n == name and ls == labels]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


def requests_counted(samples: Samples, method: str, route: str, status: str) -> float:
    return value(samples, "riskops_http_request_duration_seconds_count", method=method, route=route, status=status)


def test_requests_are_counted_by_route_template_and_status(app_client: TestClient, keys: Keys) -> None:
    created = create_risk(app_client)
    before = scrape(app_client)
    for ref in (created["reference"], str(created["id"])):
        assert app_client.get(f"/api/v1/risks/{ref}", headers=keys.headers("read")).status_code == 200
    assert app_client.get("/api/v1/risks/R-9999", headers=keys.headers("read")).status_code == 404
    assert app_client.get("/no/such/path/4711").status_code == 404
    assert app_client.request("BREW", "/api/v1/risks").status_code == 405
    response = app_client.get("/metrics", headers=SCRAPER)
    after = scrape(app_client)

    route = "/api/v1/risks/{risk_ref}"
    assert requests_counted(after, "GET", route, "200") - requests_counted(before, "GET", route, "200") == 2
    assert requests_counted(after, "GET", route, "404") - requests_counted(before, "GET", route, "404") == 1
    assert requests_counted(after, "GET", "unmatched", "404") == 1
    assert requests_counted(after, "OTHER", "/api/v1/risks", "405") == 1  # an invented method is not a label value
    assert requests_counted(after, "POST", "/api/v1/risks", "201") == 1
    buckets = [v for n, ls, v in after if n.endswith("_bucket") and ls.get("route") == route and ls["status"] == "200"]
    assert buckets and buckets[-1] == 2  # +Inf holds every observation
    for raw in (created["reference"], "R-9999", "/no/such/path", "BREW"):
        assert raw not in response.text  # only templates: no label per risk, path or method invented


def test_the_database_figures_move_with_the_clock_and_a_worker_tick(
    app_client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    risk = create_risk(app_client)
    level = risk["level"]
    fresh = scrape(app_client)
    assert value(fresh, "riskops_database_up") == 1
    assert value(fresh, "riskops_risks_open", level=level) == 1
    assert value(fresh, "riskops_risks_overdue", level=level) == 0
    pending, due_now = value(fresh, "riskops_notices_pending"), value(fresh, "riskops_notices_overdue")
    assert pending > due_now  # the review reminders wait for their dates

    frozen_clock.advance(timedelta(days=400))  # past the review date: the reminders are due, the risk is overdue
    late = scrape(app_client)
    assert value(late, "riskops_risks_overdue", level=level) == 1
    overdue = value(late, "riskops_notices_overdue")
    assert overdue > due_now and value(late, "riskops_scheduler_lag_seconds") >= timedelta(days=400).total_seconds()

    worker.tick()
    ticked = scrape(app_client)
    assert value(ticked, "riskops_notices_overdue") == 0 and value(ticked, "riskops_scheduler_lag_seconds") == 0
    assert value(ticked, "riskops_notices_pending") <= pending - overdue
    assert value(ticked, "riskops_risks_overdue", level=level) == 1  # a fired reminder does not review the risk


def test_deliveries_move_with_a_real_receiver(
    app_client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as answering, receiver() as gone:
        gone.default = (410, {}, b"gone")  # Standard Webhooks: stop sending; the subscription is disabled
        kept = subscribe(app_client, keys, answering.url, ["risk.created"])
        dropped = subscribe(app_client, keys, gone.url, ["risk.created"])
        create_risk(app_client)
        frozen_clock.advance(timedelta(seconds=30))
        queued = scrape(app_client)
        for sub in (kept, dropped):
            assert value(queued, "riskops_webhook_deliveries", subscription=str(sub["id"]), status="pending") == 1
        assert value(queued, "riskops_webhook_deliveries_due") == 2
        assert value(queued, "riskops_webhook_delivery_oldest_due_seconds") == 30
        assert value(queued, "riskops_webhook_subscriptions", status="active") == 2

        worker.tick()
        assert len(answering.requests) == 1 and len(gone.requests) == 1
    sent = scrape(app_client)
    assert value(sent, "riskops_webhook_deliveries", subscription=str(kept["id"]), status="pending") == 0
    assert value(sent, "riskops_webhook_deliveries", subscription=str(kept["id"]), status="failed") == 0
    assert value(sent, "riskops_webhook_deliveries", subscription=str(dropped["id"]), status="failed") == 1
    assert value(sent, "riskops_webhook_deliveries_due") == 0
    assert value(sent, "riskops_webhook_subscriptions", status="disabled") == 1


def test_alerts_by_outcome_and_open_incidents_by_severity_and_state(app_client: TestClient, keys: Keys) -> None:
    integration = make_integration(app_client, keys, "generic")
    alert: dict[str, Any] = {"action": "trigger", "dedup_key": "disk/db1", "title": "Disk full", "severity": "SEV2"}
    for _ in range(2):  # opened, then attached to the same incident
        assert app_client.post("/api/v1/inbound/generic", json=alert, headers=bearer(integration["token"])).is_success
    refused = app_client.post("/api/v1/inbound/generic", json={"nonsense": 1}, headers=bearer(integration["token"]))
    assert refused.status_code == 400  # and recorded as rejected
    declared = {"title": "Drill", "severity": "SEV1", "exercise": True}  # exercises are not open incidents
    assert app_client.post("/api/v1/incidents", json=declared).status_code == 201
    samples = scrape(app_client, keys.headers("read"))

    outcomes = {
        ls["outcome"]: v
        for n, ls, v in samples
        if n == "riskops_inbound_alerts_total" and ls["integration"] == str(integration["id"])
    }
    assert outcomes["opened"] == 1 and outcomes["rejected"] == 1 and sum(outcomes.values()) == 3, outcomes
    assert all(ls["kind"] == "generic" for n, ls, _ in samples if n == "riskops_inbound_alerts_total")
    assert value(samples, "riskops_incidents_open", severity="SEV2", state="declared") == 1
    assert value(samples, "riskops_incidents_open", severity="SEV1", state="declared") == 0  # the drill
    states = {ls["state"] for n, ls, _ in samples if n == "riskops_incidents_open"}
    assert states == {"declared", "acknowledged", "mitigated"}  # every open state, zeros included


def test_scraping_needs_the_metrics_token_or_a_read_key(app_client: TestClient, keys: Keys) -> None:
    for sent in ("", "Bearer not-the-token", f"Bearer {TOKEN}x"):
        refused = app_client.get("/metrics", headers={"Authorization": sent})
        problem = assert_problem(refused, 401)
        assert problem["request_id"] == refused.headers["x-request-id"]
        assert TOKEN not in refused.text
    for headers in (SCRAPER, keys.headers("read"), keys.headers("write")):
        assert value(scrape(app_client, headers), "riskops_database_up") == 1


def test_without_a_metrics_token_a_read_key_scrapes(client: TestClient, keys: Keys) -> None:
    """The `client` fixture's settings have no token: an empty or any bearer is no way in."""
    assert_problem(client.get("/metrics", headers={"Authorization": "Bearer "}), 401)
    assert value(scrape(client, keys.headers("read")), "riskops_database_up") == 1


def test_an_unreadable_database_still_scrapes_this_process(tmp_path: Any) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/no-such-directory/riskops.db", scheduler_enabled=False, metrics_token=TOKEN
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        samples = scrape(client)
    assert value(samples, "riskops_database_up") == 0
    assert requests_counted(samples, "GET", "/healthz", "200") == 1
    assert not [n for n, _, _ in samples if n.startswith(("riskops_risks", "riskops_notices"))]


def test_the_scheduler_of_this_process_reports_its_ticks(engine: Engine) -> None:
    settings = Settings(scheduler_enabled=True, scheduler_tick_seconds=3600, metrics_token=TOKEN)
    with TestClient(create_app(settings, engine=engine)) as client:
        deadline = time.monotonic() + 30
        while not value(samples := scrape(client), "riskops_scheduler_tick_duration_seconds_count"):
            assert time.monotonic() < deadline, "the first tick never ended"
            time.sleep(0.05)
    assert value(samples, "riskops_scheduler_tick_duration_seconds_count") == 1
    assert value(samples, "riskops_scheduler_last_tick_timestamp_seconds") > 0


def test_a_process_without_scheduler_reports_no_ticks(app_client: TestClient) -> None:
    names = {n for n, _, _ in scrape(app_client)}
    assert not {n for n in names if n.startswith("riskops_scheduler_tick")}
    assert "riskops_scheduler_lag_seconds" in names  # the database's figure: every instance reports it

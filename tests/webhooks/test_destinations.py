"""Where webhooks may not go whatever the allow-list says (this service itself), the allow-list's exact
address:port entries and its validation, refusals that never tell what a name resolved to, and who may read
the receivers' answers."""

from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_address, ip_network

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from riskops.app import create_app
from riskops.config import Settings, parse_allow_list
from riskops.db import Database
from riskops.webhooks.network import Destinations, destinations
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.receiver import receiver
from tests.webhooks.support import WEBHOOKS, create_risk, deliveries, only_delivery, subscribe, verify


@contextmanager
def app_client(
    engine: Engine, keys: Keys, base_url: str = "http://testserver", **settings: object
) -> Iterator[TestClient]:
    """The app with these settings, authenticated as admin; `base_url` is the address requests come in on."""
    config = Settings.model_validate({"scheduler_enabled": False, **settings})
    with TestClient(create_app(config, engine=engine), base_url=base_url, headers=keys.headers("admin")) as client:
        yield client


@contextmanager
def sender(engine: Engine, **settings: object) -> Iterator[Worker]:
    worker = Worker(Database(engine), Settings.model_validate({"smtp_host": None, **settings}))
    try:
        yield worker
    finally:
        worker.pool.shutdown()
        worker.client.close()


def _refused(client: TestClient, url: str) -> str:
    problem = assert_problem(client.post(WEBHOOKS, json={"url": url, "event_types": ["*"]}), 422, "body.url")
    detail: str = problem["detail"]
    return detail


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


# ---- this service itself ----


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/api/v1/risks",
        "http://localhost:8000/",
        "http://127.0.0.2:8000/",  # any loopback address
        "http://0.0.0.0:8000/",  # the any-address reaches the local listener
        "http://[::ffff:127.0.0.1]:8000/",
        "http://[::1]:8000/",
        "http://2130706433:8000/",
    ],
)
def test_own_port_on_loopback_is_refused_whatever_the_allow_list(engine: Engine, keys: Keys, url: str) -> None:
    before = row_counts(engine)
    allow = "0.0.0.0/0,::/0,127.0.0.1:8000,[::1]:8000"  # everything, and the very address, allowed
    with app_client(engine, keys, port=8000, webhook_allowed_networks=allow) as client:
        assert "this riskops service itself" in _refused(client, url)
        assert row_counts(engine) == before
        assert client.post(WEBHOOKS, json={"url": "http://127.0.0.1:8001/", "event_types": ["*"]}).status_code == 201


def test_the_configured_host_is_refused_on_the_service_port(engine: Engine, keys: Keys) -> None:
    with app_client(engine, keys, host="10.9.8.7", port=8099, webhook_allowed_networks="10.0.0.0/8") as client:
        assert "this riskops service itself" in _refused(client, "http://10.9.8.7:8099/hook")
        assert client.post(WEBHOOKS, json={"url": "http://10.9.8.7:8100/", "event_types": ["*"]}).status_code == 201
        assert client.post(WEBHOOKS, json={"url": "http://10.9.8.6:8099/", "event_types": ["*"]}).status_code == 201


def test_the_address_a_request_came_in_on_is_refused(engine: Engine, keys: Keys) -> None:
    """Behind `riskops serve --port`, the settings may not know the port: the request's server address does."""
    with app_client(
        engine, keys, base_url="http://10.1.2.3:8123", port=8000, webhook_allowed_networks="10.0.0.0/8,127.0.0.0/8"
    ) as client:
        for url in ("http://10.1.2.3:8123/hook", "http://127.0.0.1:8123/hook"):
            assert "this riskops service itself" in _refused(client, url)
        assert client.post(WEBHOOKS, json={"url": "http://10.1.2.3:9000/", "event_types": ["*"]}).status_code == 201


def test_own_address_is_refused_at_connect_time_too(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    """Registered while it was someone else's port; by the time it is sent, this service listens there."""
    with receiver() as r:
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)
        with sender(engine, port=_port(r.url), webhook_allowed_networks=f"127.0.0.0/8,127.0.0.1:{_port(r.url)}") as w:
            w.tick()
        assert r.requests == []
        (attempt,) = only_delivery(client, sub["id"], keys.headers("admin"))["attempt_log"]
        assert attempt["status_code"] is None and attempt["response_excerpt"] is None
        assert attempt["error"].startswith("blocked") and "this riskops service itself" in attempt["error"]


def test_destinations_from_the_settings_and_the_request() -> None:
    rules = destinations(
        Settings(host="127.0.0.1", port=8000, webhook_allowed_networks="10.0.0.0/8,[::1]:9000"), ("10.1.1.1", 8443)
    )
    assert rules.own_ports == {8000, 8443} and {ip_address("127.0.0.1"), ip_address("10.1.1.1")} <= rules.own_addresses
    for address, port in (("127.0.0.1", 8000), ("10.1.1.1", 8000), ("10.1.1.1", 8443), ("::", 8443)):
        assert rules.is_own(ip_address(address), port) and not rules.permits(ip_address(address), port)
    assert rules.permits(ip_address("10.1.1.1"), 9000) and rules.permits(ip_address("10.2.0.1"), 8000)
    assert rules.permits(ip_address("::1"), 9000) and not rules.permits(ip_address("::1"), 9001)
    assert destinations(Settings(), ("testserver", 80)).own_ports == {8000}  # a made-up name is no address


# ---- exact address:port entries ----


def test_an_address_and_port_entry_allows_exactly_that_receiver(
    engine: Engine, keys: Keys, frozen_clock: FrozenClock
) -> None:
    with receiver() as r, receiver() as other:
        allow = f"127.0.0.1:{_port(r.url)}"
        with app_client(engine, keys, webhook_allowed_networks=allow) as client:
            sub = subscribe(client, keys, r.url, ["risk.created"])
            detail = _refused(client, other.url)  # the same host on another port stays refused
            assert "RISKOPS_WEBHOOK_ALLOWED_NETWORKS" in detail
            _refused(client, f"http://127.0.0.2:{_port(r.url)}/hook")
            create_risk(client)
            with sender(engine, webhook_allowed_networks=allow) as w:
                w.tick()
            (request,) = r.requests
            verify(sub["secret"], request)
            assert only_delivery(client, sub["id"])["status"] == "succeeded"


def test_an_ipv6_address_and_port_entry(engine: Engine, keys: Keys, frozen_clock: FrozenClock) -> None:
    with receiver("::1") as r:
        allow = f"[::1]:{_port(r.url)}"
        with app_client(engine, keys, webhook_allowed_networks=allow) as client:
            sub = subscribe(client, keys, r.url, ["risk.created"])
            _refused(client, f"http://[::1]:{_port(r.url) + 1}/hook")
            create_risk(client)
            with sender(engine, webhook_allowed_networks=allow) as w:
                w.tick()
            (request,) = r.requests
            verify(sub["secret"], request)


def test_allow_list_entries_are_parsed() -> None:
    networks, endpoints = parse_allow_list(" 10.0.0.0/8, 127.0.0.1:8099 ,[::1]:8099,fd00::/8, 192.0.2.7,, ::1 ")
    assert networks == [ip_network(n) for n in ("10.0.0.0/8", "fd00::/8", "192.0.2.7/32", "::1/128")]
    assert endpoints == [(ip_address("127.0.0.1"), 8099), (ip_address("::1"), 8099)]
    assert parse_allow_list("") == ([], [])
    rules = Destinations(networks=tuple(networks), endpoints=frozenset(endpoints))
    assert rules.permits(ip_address("::ffff:127.0.0.1"), 8099)  # the mapped form of an allowed address
    assert not rules.permits(ip_address("127.0.0.1"), 8098)


@pytest.mark.parametrize(
    "entry",
    ["10.0.0.0/33", "localhost:8099", "example.com", "[::1]", "[::1]:x", "127.0.0.1:0", "127.0.0.1:70000",
     "127.0.0.1:", "127.0.0.1:80:90", "10.0.0.0/8/8", "[localhost]:80", "1.2.3.4:+80"],
)  # fmt: skip
def test_a_bad_allow_list_entry_is_a_settings_error(entry: str) -> None:
    with pytest.raises(ValidationError, match="is neither a network"):
        Settings(webhook_allowed_networks=f"10.0.0.0/8,{entry}")


# ---- what a refusal says ----


def test_refusals_name_the_host_never_what_it_resolved_to(engine: Engine, keys: Keys) -> None:
    with app_client(engine, keys, webhook_allowed_networks="") as client:
        for url in ("http://localhost:9/hook", "http://localhost:8000/hook"):
            detail = _refused(client, url)
            assert "localhost" in detail
            assert "127.0.0.1" not in detail and "::1" not in detail


# ---- the receivers' answers ----


def test_only_admins_read_the_receivers_answers(
    client: TestClient, keys: Keys, worker: Worker, frozen_clock: FrozenClock
) -> None:
    with receiver() as r:
        r.default = (200, {}, b"internal answer: secret-looking things")
        sub = subscribe(client, keys, r.url, ["risk.created"])
        create_risk(client)
        worker.tick()
        for role in ("read", "write"):
            listed = client.get(f"{WEBHOOKS}/{sub['id']}/deliveries", headers=keys.headers(role))
            assert listed.status_code == 200 and "internal answer" not in listed.text
            (attempt,) = listed.json()["items"][0]["attempt_log"]
            assert "response_excerpt" not in attempt and attempt["status_code"] == 200
        (delivery,) = deliveries(client, sub["id"], headers=keys.headers("admin"))
        assert delivery["attempt_log"][0]["response_excerpt"] == "internal answer: secret-looking things"

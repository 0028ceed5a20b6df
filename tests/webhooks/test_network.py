"""Where webhooks may go: refused at registration, and checked again at connect time (no traffic leaves)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from riskops.app import create_app
from riskops.config import Settings
from riskops.db import Database
from riskops.events.models import PayloadFormat
from riskops.webhooks import signing
from riskops.webhooks.delivery import Job, send
from riskops.webhooks.network import BlockedDestination, allowed, pinned_url, resolve
from riskops.worker import Worker
from tests.conftest import FrozenClock, Keys
from tests.helpers import assert_problem, row_counts
from tests.receiver import receiver
from tests.webhooks.support import WEBHOOKS, create_risk, only_delivery, subscribe, verify

LOOPBACK = [ip_network("127.0.0.0/8")]


@pytest.fixture
def strict_client(engine: Engine, keys: Keys) -> Iterator[TestClient]:
    """The app as shipped: no network allowed beyond global addresses; authenticated as admin."""
    settings = Settings(scheduler_enabled=False, webhook_allowed_networks="")
    with TestClient(create_app(settings, engine=engine), headers=keys.headers("admin")) as client:
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://192.168.1.1/",
        "http://224.0.0.1/",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/",
        "http://localhost/x",
        "http://2130706433/",  # 127.0.0.1 spelt as one number
        "http://0x7f000001/",
        "http://127.1/",
        "http://[::ffff:a9fe:a9fe]/latest",  # 169.254.169.254, IPv4-mapped
        "ftp://example.com/",
        "not a url",
    ],
)
def test_forbidden_destination_is_refused(strict_client: TestClient, engine: Engine, url: str) -> None:
    before = row_counts(engine)
    response = strict_client.post(WEBHOOKS, json={"url": url, "event_types": ["risk.*"]})
    assert_problem(response, 422, "body.url")
    assert row_counts(engine) == before


def test_loopback_receiver_is_refused_without_a_request(strict_client: TestClient, engine: Engine) -> None:
    before = row_counts(engine)
    with receiver() as r:
        port = r.url.split(":")[2].split("/")[0]
        for url in (f"http://127.0.0.1:{port}/", r.url):
            problem = assert_problem(
                strict_client.post(WEBHOOKS, json={"url": url, "event_types": ["*"]}), 422, "body.url"
            )
            assert "127.0.0.1" in problem["detail"]
        assert r.requests == []
    assert row_counts(engine) == before


def test_changing_the_url_is_checked_too(client: TestClient, keys: Keys) -> None:
    with receiver() as r:
        sub = subscribe(client, keys, r.url, ["risk.*"])
        moved = client.patch(
            f"{WEBHOOKS}/{sub['id']}", json={"url": "http://169.254.169.254/latest"}, headers=keys.headers("admin")
        )
        assert_problem(moved, 422, "body.url")
        kept = client.get(f"{WEBHOOKS}/{sub['id']}", headers=keys.headers("admin")).json()
        assert kept["url"] == r.url


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_are_allowed(address: str) -> None:
    assert allowed(ip_address(address), [])


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",  # private
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # carrier-grade NAT
        "127.0.0.1",  # loopback
        "127.8.9.10",
        "::1",
        "169.254.169.254",  # link-local (cloud metadata)
        "fe80::1",
        "fc00::1",  # unique local
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "ff02::1",
        "0.0.0.0",
        "255.255.255.255",
        "::ffff:127.0.0.1",  # IPv4-mapped IPv6 loopback
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    assert not allowed(ip_address(address), [])


@pytest.mark.parametrize(
    ("address", "networks", "expected"),
    [
        ("127.0.0.1", LOOPBACK, True),
        ("127.200.0.1", LOOPBACK, True),
        ("::ffff:127.0.0.1", LOOPBACK, True),  # the mapped form of an allowed address is allowed
        ("10.0.0.1", LOOPBACK, False),
        ("10.0.0.1", [ip_network("10.0.0.0/24")], True),
        ("10.0.1.1", [ip_network("10.0.0.0/24")], False),
        ("fd00::5", [ip_network("fd00::/8")], True),
        ("::1", LOOPBACK, False),
    ],
)
def test_allowed_networks_override(address: str, networks: list[IPv4Network | IPv6Network], expected: bool) -> None:
    assert allowed(ip_address(address), networks) is expected


@pytest.mark.parametrize(
    ("url", "ip", "expected"),
    [
        ("https://hooks.example.com/a/b?c=1", "93.184.216.34", "https://93.184.216.34/a/b?c=1"),
        ("http://hooks.example.com:8080/x", "93.184.216.34", "http://93.184.216.34:8080/x"),
        ("https://hooks.example.com:8443/", "2606:4700::1", "https://[2606:4700::1]:8443/"),
        ("https://user:pw@hooks.example.com/x#frag", "1.1.1.1", "https://1.1.1.1/x#frag"),
    ],
)
def test_pinned_url_replaces_the_host_with_the_checked_address(url: str, ip: str, expected: str) -> None:
    assert pinned_url(url, ip) == expected


def test_resolve_checks_the_address_it_returns() -> None:
    assert resolve("http://127.0.0.1:8080/hook", LOOPBACK) == ("127.0.0.1", "127.0.0.1:8080", "127.0.0.1")
    assert resolve("https://127.0.0.1/hook", LOOPBACK) == ("127.0.0.1", "127.0.0.1", "127.0.0.1")
    assert resolve("http://localhost/hook", LOOPBACK)[2].startswith("127.")
    for url in ("http://127.0.0.1:8080/hook", "http://[::1]/", "http://localhost/", "http://169.254.169.254/"):
        with pytest.raises(BlockedDestination):
            resolve(url, [])
    with pytest.raises(BlockedDestination, match="only http and https"):
        resolve("ftp://127.0.0.1/", LOOPBACK)
    with pytest.raises(BlockedDestination, match="cannot resolve"):
        resolve("http://no-such-host.invalid/", LOOPBACK)


def test_connect_time_check_blocks_a_destination_no_longer_allowed(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    with receiver() as r:
        sub = subscribe(client, keys, r.url, ["risk.created"])  # allowed when registered (127.0.0.0/8)
        create_risk(client)
        strict = Worker(Database(engine), Settings(webhook_allowed_networks="", smtp_host=None))
        try:
            strict.tick()
        finally:
            strict.pool.shutdown()
            strict.client.close()

        assert r.requests == []
        delivery = only_delivery(client, sub["id"], keys.headers("admin"))
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        (attempt,) = delivery["attempt_log"]
        assert attempt["status_code"] is None and attempt["response_excerpt"] is None
        assert attempt["error"].startswith("blocked"), attempt["error"]
        assert "127.0.0.1" in attempt["error"]
        assert delivery["last_error"] == attempt["error"]


def test_ipv6_destination_gets_a_well_formed_host_header(engine: Engine, keys: Keys, frozen_clock: FrozenClock) -> None:
    """`http://[::1]:PORT/hook` goes out with `Host: [::1]:PORT` (RFC 3986 IP-literal), not `::1:PORT`."""
    settings = Settings(scheduler_enabled=False, webhook_allowed_networks="::1/128", smtp_host=None)
    sender = Worker(Database(engine), settings)
    try:
        with (
            receiver("::1") as r,
            TestClient(create_app(settings, engine=engine), headers=keys.headers("write")) as client,
        ):
            sub = subscribe(client, keys, r.url, ["risk.created"])
            create_risk(client)
            sender.tick()
            (request,) = r.requests
            verify(sub["secret"], request)  # it did arrive, signed
            port = r.url.split("]:")[1].split("/")[0]
            assert request.headers["host"] == f"[::1]:{port}", "IPv6 Host header must be bracketed"
    finally:
        sender.pool.shutdown()
        sender.client.close()


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1/hook", "127.0.0.1"),
        ("https://127.0.0.1/hook", "127.0.0.1"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1:8080"),
        ("https://127.0.0.1:8443/hook", "127.0.0.1:8443"),
        # Only the scheme's own default port is left out of Host; the other scheme's default is kept.
        ("http://127.0.0.1:443/hook", "127.0.0.1:443"),
        ("https://127.0.0.1:80/hook", "127.0.0.1:80"),
    ],
)
def test_host_header_names_the_port_unless_it_is_the_schemes_default(url: str, host: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    job = Job(
        delivery_id=1, lease_until=datetime.now(UTC), url=url, secrets=[signing.new_secret()],
        format=PayloadFormat.standard, message_id="evt_1", event_type="risk.created", body=b"{}",
    )  # fmt: skip
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:  # no traffic: the request is only looked at
        outcome = send(client, job, LOOPBACK)
    assert outcome.ok and len(seen) == 1
    assert seen[0].url.host == "127.0.0.1"  # pinned to the checked address
    assert seen[0].headers["host"] == host


@pytest.mark.parametrize("address", ["::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::1", "64:ff9b::a9fe:a9fe"])
def test_ipv4_inside_ipv6_is_judged_by_the_ipv4_address(address: str) -> None:
    assert not allowed(ip_address(address), [])
    assert allowed(ip_address("64:ff9b::5db8:d822"), [])  # NAT64 of a public address stays reachable


def test_a_cookie_one_receiver_sets_never_goes_out_again(
    client: TestClient, keys: Keys, engine: Engine, frozen_clock: FrozenClock
) -> None:
    """The worker's one client is shared by every subscription: a cookie kept from one answer would go to the next."""
    sender = Worker(Database(engine), Settings(webhook_allowed_networks="127.0.0.0/8", smtp_host=None))
    try:
        with receiver() as r:
            r.default = (200, {"set-cookie": "session=theirs; Path=/"}, b"ok")
            subscribe(client, keys, r.url, ["risk.created"])
            create_risk(client)
            sender.tick()
            second = subscribe(client, keys, r.url, ["risk.created"])
            create_risk(client)
            sender.tick()
            assert len(r.requests) == 3, "one delivery to the first subscription, then one to each"
            assert all("cookie" not in request.headers for request in r.requests)
            assert only_delivery(client, second["id"], keys.headers("admin"))["status"] == "succeeded"
            assert len(sender.client.cookies) == 0
    finally:
        sender.pool.shutdown()
        sender.client.close()

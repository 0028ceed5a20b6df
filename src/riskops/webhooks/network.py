"""Where outgoing webhooks may go: global addresses only, unless an operator allows a network or an exact
address and port; never this riskops service itself, whatever is allowed. And the one POST that takes a
webhook there.

The check runs at registration and again at connect time on the address actually connected to,
so a DNS answer that changes in between (rebinding) cannot reach an internal host.
"""

import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

import httpx

from riskops.clock import now as utcnow
from riskops.config import Settings
from riskops.events.models import PayloadFormat
from riskops.webhooks import signing

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


class BlockedDestination(Exception):
    pass


@dataclass(frozen=True)
class Destinations:
    """What may be connected to: global addresses, `networks`, exact `endpoints` (address, port); and what never
    may: this service, i.e. its ports on a loopback or any-address, or on one of its own addresses."""

    networks: tuple[Network, ...] = ()
    endpoints: frozenset[tuple[Address, int]] = frozenset()
    own_ports: frozenset[int] = frozenset()
    own_addresses: frozenset[Address] = frozenset()

    def is_own(self, address: Address, port: int) -> bool:
        if port not in self.own_ports:
            return False
        plain = _plain(address)
        return plain.is_loopback or plain.is_unspecified or bool({address, plain} & self.own_addresses)

    def permits(self, address: Address, port: int) -> bool:
        if self.is_own(address, port):
            return False
        if {(address, port), (_plain(address), port)} & self.endpoints:
            return True
        return allowed(address, list(self.networks))


# The rules, or only networks to allow (as tests and older callers give them).
Rules = Destinations | Sequence[Network]


def destinations(settings: Settings, server: Sequence[object] | None = None) -> Destinations:
    """The rules from the settings; `server` is the (host, port) a request came in on, when there is one."""
    ports = {settings.port}
    addresses = set(_addresses_of(settings.host))
    if server is not None and len(server) == 2 and isinstance(server[1], int):
        try:
            addresses.add(ip_address(str(server[0])))
            ports.add(server[1])
        except ValueError:  # a test client's made-up name, not an address
            pass
    if any(a.is_unspecified for a in addresses):  # listening everywhere: every address of this machine is its own
        addresses.update(_addresses_of(socket.gethostname()))
    return Destinations(
        networks=tuple(settings.allowed_networks), endpoints=frozenset(settings.allowed_endpoints),
        own_ports=frozenset(ports), own_addresses=frozenset(addresses),
    )  # fmt: skip


def _addresses_of(host: str) -> Iterable[Address]:
    try:
        return [ip_address(host)]
    except ValueError:
        pass
    try:
        return {ip_address(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except (OSError, ValueError):  # best effort: loopback and any-address are refused on the port regardless
        return []


def _plain(address: Address) -> Address:
    embedded = _embedded_ipv4(address) if isinstance(address, IPv6Address) else None
    return embedded or address


def allowed(address: IPv4Address | IPv6Address, networks: list[Network]) -> bool:
    if any(address in net for net in networks):
        return True
    embedded = _embedded_ipv4(address) if isinstance(address, IPv6Address) else None
    if embedded is not None:  # judge a tunnelled or translated IPv4 address by the IPv4 address itself
        return allowed(embedded, networks)
    return address.is_global and not address.is_multicast


_NAT64 = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):  # :: and ::1 are themselves
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(url: str, rules: Rules) -> tuple[str, str, str]:
    """(host, Host header, ip): the first resolved address that may be reached; BlockedDestination if none may.

    The reason names the URL's host, never what it resolved to: that would map internal names for the caller.
    """
    if not isinstance(rules, Destinations):
        rules = Destinations(networks=tuple(rules))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedDestination("only http and https URLs with a host are allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedDestination("the URL's port is not a number from 1 to 65535") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedDestination(f"cannot resolve '{parts.hostname}': {exc.strerror}") from exc
    addresses = [ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if rules.permits(address, port):
            return parts.hostname, parts.netloc.rpartition("@")[2], str(address)
    if any(rules.is_own(address, port) for address in addresses):
        raise BlockedDestination(f"'{parts.hostname}:{port}' is this riskops service itself; webhooks may not call it")
    raise BlockedDestination(
        f"'{parts.hostname}' is not public (private, loopback, link-local or reserved) and "
        f"RISKOPS_WEBHOOK_ALLOWED_NETWORKS does not allow it at port {port}"
    )


def pinned_url(url: str, ip: str) -> str:
    """The URL with its host replaced by the checked address (the Host header and TLS name keep the name)."""
    parts = urlsplit(url)
    host = f"[{ip}]" if ":" in ip else ip
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class Target:
    """Where a webhook goes: the URL pinned to the checked address, with the name for TLS and the Host header."""

    host: str
    host_header: str
    pinned_url: str


class Resolver:
    """resolve() with its answer for each URL kept `ttl` seconds, so a batch to one receiver resolves and checks
    once. A kept answer is the address that was checked, and the request is pinned to it: what is connected to
    is still only ever a checked address, however the name's DNS answer changes meanwhile."""

    def __init__(self, rules: Rules, ttl: float = 10.0):
        self.rules = rules
        self.ttl = ttl
        self._answers: dict[str, tuple[float, Target | str]] = {}  # a target, or why the URL is blocked

    def target(self, url: str) -> Target:
        now = time.monotonic()
        kept = self._answers.get(url)
        if kept is None or now - kept[0] >= self.ttl:
            try:
                host, host_header, ip = resolve(url, self.rules)
                kept = (now, Target(host, host_header, pinned_url(url, ip)))
            except BlockedDestination as exc:
                kept = (now, str(exc))
            if self.ttl > 0:
                self._answers[url] = kept  # threads racing here only resolve twice
        if isinstance(kept[1], str):
            raise BlockedDestination(kept[1])
        return kept[1]


# ---- sending ----

MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class Job:
    """What one attempt needs, read while claiming, so no transaction stays open during the HTTP call."""

    delivery_id: int
    lease_until: datetime
    url: str
    secrets: list[str]
    format: PayloadFormat
    message_id: str
    event_type: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: float
    error: str | None
    excerpt: str | None
    retry_after: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def new_client(settings: Settings) -> httpx.Client:
    """The one client a worker sends every webhook through: no redirects, no proxy from the environment, and no
    cookies, since a cookie one receiver sets would otherwise go out with every later delivery to that host, whoever
    subscribed it."""
    return httpx.Client(
        follow_redirects=False, trust_env=False, timeout=settings.webhook_timeout_seconds,
        cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        # Every sender keeps its connection between deliveries (httpx keeps only 20 alive by default).
        limits=httpx.Limits(
            max_connections=settings.webhook_concurrency * 2,
            max_keepalive_connections=settings.webhook_concurrency * 2,
        ),
    )  # fmt: skip


def send(client: httpx.Client, job: Job, rules: Rules | Resolver) -> Outcome:
    """One POST, to the address checked at connect time; redirects are not followed, the answer is read capped."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 2)

    resolver = rules if isinstance(rules, Resolver) else Resolver(rules, ttl=0)
    try:
        target = resolver.target(job.url)
    except BlockedDestination as exc:
        return Outcome(None, elapsed(), f"blocked: {exc}"[:500], None)
    timestamp = int(time.time())  # the receiver checks it against its own wall clock (replay protection)
    headers = {
        "content-type": "application/json",
        "user-agent": "riskops-webhooks/1",
        "host": target.host_header,
        "webhook-id": job.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(job.secrets, job.message_id, timestamp, job.body),
    }
    try:
        request = client.build_request(
            "POST", target.pinned_url, content=job.body, headers=headers, extensions={"sni_hostname": target.host},
        )  # fmt: skip
        response = client.send(request, stream=True)
        try:
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
        finally:
            response.close()
    except httpx.HTTPError as exc:
        return Outcome(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500], None)
    # PostgreSQL text holds no NUL character: one from the receiver is kept as the replacement character.
    shown = excerpt[:EXCERPT_BYTES].decode("utf-8", "replace").replace("\0", "\ufffd")
    return Outcome(
        response.status_code, elapsed(), None, shown, retry_after=_retry_after(response.headers.get("retry-after"))
    )


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        wait = timedelta(seconds=int(value))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - utcnow()
        except (TypeError, ValueError):
            return None
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)

"""Where outgoing webhooks may go: global addresses only, unless an operator allows a network or an exact
address and port; never this riskops service itself, whatever is allowed.

The check runs at registration and again at connect time on the address actually connected to,
so a DNS answer that changes in between (rebinding) cannot reach an internal host.
"""

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

from riskops.config import Settings

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

"""Where outgoing webhooks may go: global addresses only, unless an operator allows a network.

The check runs at registration and again at connect time on the address actually connected to,
so a DNS answer that changes in between (rebinding) cannot reach an internal host.
"""

import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

Network = IPv4Network | IPv6Network


class BlockedDestination(Exception):
    pass


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


def resolve(url: str, networks: list[Network]) -> tuple[str, str, str]:
    """(host, Host header, ip): the first resolved address that may be reached; BlockedDestination if none may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedDestination("only http and https URLs with a host are allowed")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedDestination(f"cannot resolve '{parts.hostname}': {exc.strerror}") from exc
    addresses = [ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if allowed(address, networks):
            return parts.hostname, parts.netloc.rpartition("@")[2], str(address)
    shown = ", ".join(sorted({str(a) for a in addresses}))
    raise BlockedDestination(
        f"'{parts.hostname}' resolves to {shown}, which is private, loopback, link-local or otherwise not public; "
        "an operator can allow a network with RISKOPS_WEBHOOK_ALLOWED_NETWORKS"
    )


def pinned_url(url: str, ip: str) -> str:
    """The URL with its host replaced by the checked address (the Host header and TLS name keep the name)."""
    parts = urlsplit(url)
    host = f"[{ip}]" if ":" in ip else ip
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()

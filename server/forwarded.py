"""Believe ``X-Forwarded-For`` and ``X-Forwarded-Proto`` only from our own reverse proxies.

Behind nginx every connection comes from nginx's address, so without this the
server would record nginx as every agent's exit IP and as every admin's address.
Anyone can send these headers, though, so they are read only when the TCP peer
is one of the configured proxies (``EXITPOOL_TRUSTED_PROXIES``), and the
client is found by walking ``X-Forwarded-For`` from the right: each entry was
appended by the hop to its right, so entries are believed only while that hop
is a trusted proxy, and the first untrusted address is the client. Whatever a
client wrote further left is never used.

Django is not told to trust the headers itself (no ``SECURE_PROXY_SSL_HEADER``):
it reads the address and scheme this wrapper puts in the ASGI scope, which is
why an untrusted peer's headers change nothing anywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "EXITPOOL_TRUSTED_PROXIES"


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8, ::1"`` → networks; a bad entry is a ``ValueError`` naming it.

    Names are not resolved (a DNS answer must not decide whom we trust), and a
    network with host bits set is refused rather than silently widened.
    """
    networks: list[Network] = []
    for entry in (item.strip() for item in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(_unmapped_network(ipaddress.ip_network(entry)))
        except ValueError as exc:
            raise ValueError(
                f"{SETTING}: {entry!r} is not an IP address or network"
                f" (addresses and CIDRs only, names are not resolved): {exc}"
            ) from None
    return tuple(networks)


def is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The real client behind ``peer``, given every ``X-Forwarded-For`` value in order.

    ``peer`` itself is returned unless it is trusted. The walk stops at the
    first untrusted address (the client) or at an entry that is not an address
    (nothing left of it can be believed: the last trusted hop is the answer).
    """
    address = parse_address(peer)
    if address is None or not is_trusted(address, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    client = peer
    for hop in reversed(hops):
        found = parse_address(hop)
        if found is None:
            break
        client = str(found)
        if not is_trusted(found, trusted):
            break
    return client


def forwarded_scheme(scope_type: str, current: str, forwarded_proto: str) -> str:
    """The scheme the client used, from the right-most (nearest proxy's) ``X-Forwarded-Proto``.

    A value that is not a web scheme leaves ``current`` as it is.
    """
    proto = forwarded_proto.rsplit(",", 1)[-1].strip().lower()
    if proto not in ("http", "https", "ws", "wss"):
        return current
    secure = proto in ("https", "wss")
    if scope_type == "websocket":
        return "wss" if secure else "ws"
    return "https" if secure else "http"


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``."""
    text = text.strip()
    if text.startswith("["):
        text, bracket, port = text[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and port[1:].isdigit())):
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped_network(network: Network) -> Network:
    """``::ffff:10.0.0.0/104`` → ``10.0.0.0/8``: peers are compared in their IPv4 form."""
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def behind_proxies(app: ASGIApp, trusted: Sequence[Network]) -> ASGIApp:
    """Wrap ``app`` so that, behind a trusted proxy, the scope's client and scheme are real.

    With no trusted proxies ``app`` is returned as it is: nothing to believe.
    """
    if not trusted:
        return app

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = _rewritten(scope, trusted)
        await app(scope, receive, send)

    return application


def _rewritten(scope: Scope, trusted: Sequence[Network]) -> Scope:
    peer = str((scope.get("client") or ("",))[0])
    address = parse_address(peer)
    if address is None or not is_trusted(address, trusted):
        return scope
    forwarded_for: list[str] = []
    forwarded_proto: str | None = None
    for name, value in scope.get("headers", []):
        name = bytes(name).lower()
        if name == b"x-forwarded-for":
            forwarded_for.append(bytes(value).decode("latin-1"))
        elif name == b"x-forwarded-proto":
            forwarded_proto = bytes(value).decode("latin-1")
    scope = dict(scope)
    real = client_address(peer, forwarded_for, trusted)
    if real != peer:
        scope["client"] = [real, 0]  # the client's port is not forwarded
    if forwarded_proto is not None:
        default = "ws" if scope["type"] == "websocket" else "http"
        scope["scheme"] = forwarded_scheme(
            scope["type"], scope.get("scheme", default), forwarded_proto
        )
    return scope

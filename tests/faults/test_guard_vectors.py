"""The guard's full vector table, classified without dialing or resolving anything.

Expected behaviour: every destination that is not public internet is refused by the agent's
guard with the denied network named in the reason — each default denied range, every IPv6
form that carries a denied IPv4 address (mapped, IPv4-compatible, NAT64 and local-use NAT64,
6to4, Teredo server and client), every spelling of an IPv4 literal the OS accepts (decimal,
hex, octal, short, trailing dot) and names such as ``LOCALHOST.``. Literals are judged without
any DNS lookup; names are looked up once through the guard's resolver (a table here). No
socket connects during the whole classification: ``connect`` and ``getaddrinfo`` fail the test.

The table is literal on purpose: it is checked against ``DEFAULT_DENIED_NETWORKS`` in both
directions, so a range dropped from (or added to) the guard without a vector fails here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from desktop_agent.engine.guard import DEFAULT_DENIED_NETWORKS, Forbidden, Guard, parse_ip_literal

# (one address inside, the network the guard must name) for every default denied range.
DENIED_RANGES = [
    ("0.0.0.0", "0.0.0.0/8"),
    ("10.255.255.254", "10.0.0.0/8"),
    ("100.64.0.1", "100.64.0.0/10"),
    ("127.0.0.1", "127.0.0.0/8"),
    ("169.254.169.254", "169.254.0.0/16"),
    ("172.31.255.1", "172.16.0.0/12"),
    ("192.0.0.8", "192.0.0.0/24"),
    ("192.0.2.1", "192.0.2.0/24"),
    ("192.168.1.1", "192.168.0.0/16"),
    ("198.19.0.1", "198.18.0.0/15"),
    ("198.51.100.7", "198.51.100.0/24"),
    ("203.0.113.9", "203.0.113.0/24"),
    ("224.0.0.251", "224.0.0.0/4"),
    ("240.0.0.1", "240.0.0.0/4"),
    ("255.255.255.255", "240.0.0.0/4"),  # the broadcast /32 lies inside reserved 240/4
    ("::", "::/128"),
    ("::1", "::1/128"),
    ("fd12:3456::1", "fc00::/7"),
    ("fe80::1", "fe80::/10"),
    ("fec0::1", "fec0::/10"),
    ("ff02::1", "ff00::/8"),
    ("100::1", "100::/64"),
    ("2001:db8::1", "2001:db8::/32"),
]

# Other spellings the OS dials as a denied address, with the network they land in.
SPELLINGS = [
    ("2130706433", "127.0.0.0/8"),  # decimal
    ("0x7f000001", "127.0.0.0/8"),  # hex
    ("0177.0.0.1", "127.0.0.0/8"),  # octal
    ("127.1", "127.0.0.0/8"),  # short
    ("0x7f.1", "127.0.0.0/8"),
    ("127.0.0.1.", "127.0.0.0/8"),  # trailing dot
    ("0", "0.0.0.0/8"),
    ("167772161", "10.0.0.0/8"),
    ("10.1", "10.0.0.0/8"),
    ("192.168.1", "192.168.0.0/16"),
    ("0xa9fea9fe", "169.254.0.0/16"),
    ("0251.0376.0251.0376", "169.254.0.0/16"),
    ("[::1]", "::1/128"),
    ("0:0:0:0:0:0:0:1", "::1/128"),
    ("[::ffff:127.0.0.1]", "127.0.0.0/8"),
    ("fe80::1%eth0", "fe80::/10"),
]

# Names, answered by the table resolver below; the guard lower-cases and drops one dot.
NAMES = [
    ("localhost", "127.0.0.0/8"),
    ("LOCALHOST.", "127.0.0.0/8"),
    ("LocalHost", "127.0.0.0/8"),
    ("metadata.internal.test", "169.254.0.0/16"),
    ("v6-only-loopback.test", "::1/128"),
    ("public-and-private.test", "10.0.0.0/8"),  # one private answer refuses the name
]
RESOLVER_TABLE = {
    "localhost": ["127.0.0.1", "::1"],
    "metadata.internal.test": ["169.254.169.254"],
    "v6-only-loopback.test": ["::1"],
    "public-and-private.test": ["93.184.215.14", "10.0.0.1"],
}

PUBLIC = ["1.1.1.1", "93.184.215.14", "2606:4700:4700::1111"]


def wrappings(v4: str) -> dict[str, str]:
    """Every IPv6 form that can deliver packets to ``v4``, built from the RFC layouts."""
    n = int(ipaddress.IPv4Address(v4))
    public = int(ipaddress.IPv4Address("8.8.8.8"))
    forms = {
        "mapped": 0xFFFF << 32 | n,  # RFC 4291 ::ffff:a.b.c.d
        "NAT64": 0x64FF9B << 96 | n,  # RFC 6052 64:ff9b::/96
        "local NAT64": (0x64FF9B0001 << 80) | n,  # RFC 8215 64:ff9b:1::/48
        "6to4": 0x2002 << 112 | n << 80,  # RFC 3056 2002:a.b.c.d::/48
        # RFC 4380: 2001:0::/32, server IPv4, flags, port, then the client IPv4 inverted.
        "Teredo server": 0x20010000 << 96 | n << 64 | (~public & 0xFFFFFFFF),
        "Teredo client": 0x20010000 << 96 | public << 64 | (~n & 0xFFFFFFFF),
    }
    if n > 1:  # RFC 4291 deprecated IPv4-compatible ::a.b.c.d (::, ::1 are themselves)
        forms["IPv4-compatible"] = n
    return {name: str(ipaddress.IPv6Address(value)) for name, value in forms.items()}


DENIED_V4 = [(host, net) for host, net in DENIED_RANGES if ":" not in host]
WRAPPED = [
    (wrapped, net, f"{form} {host}")
    for host, net in DENIED_V4
    for form, wrapped in wrappings(host).items()
]


class TableResolver:
    """Answers names from :data:`RESOLVER_TABLE` and remembers every question."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return list(RESOLVER_TABLE[host])


@pytest.fixture(autouse=True)
def no_dialing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connect or OS name lookup during classification fails the test."""

    def dialled(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the guard touched the network: {args!r}")

    async def dialled_async(*args: Any, **kwargs: Any) -> Any:
        dialled(*args)

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, dialled)
    monkeypatch.setattr(socket, "getaddrinfo", dialled)
    monkeypatch.setattr(socket, "create_connection", dialled)
    for name in ("getaddrinfo", "create_connection", "sock_connect"):
        monkeypatch.setattr(asyncio.BaseEventLoop, name, dialled_async)
    yield


async def refusal(host: str) -> tuple[str, list[str]]:
    """The guard's reason for refusing ``host`` (port 443), and the names it looked up."""
    resolver = TableResolver()
    guard = Guard(resolver=resolver)
    with pytest.raises(Forbidden) as refused:
        await guard.resolve(host, 443)
    return str(refused.value), resolver.calls


@pytest.mark.parametrize(("host", "network"), DENIED_RANGES + SPELLINGS, ids=lambda v: v)
async def test_it_refuses_every_denied_range_and_spelling_without_a_lookup(
    host: str, network: str
) -> None:
    reason, lookups = await refusal(host)
    assert f" network {network}" in reason
    assert lookups == []


@pytest.mark.parametrize(("host", "network", "form"), WRAPPED, ids=[w[2] for w in WRAPPED])
async def test_it_refuses_every_ipv6_form_of_a_denied_ipv4(
    host: str, network: str, form: str
) -> None:
    reason, lookups = await refusal(host)
    assert f" network {network} (embedded in " in reason
    assert lookups == []


@pytest.mark.parametrize(("host", "network"), NAMES, ids=lambda v: v)
async def test_it_refuses_names_that_resolve_to_denied_addresses(host: str, network: str) -> None:
    reason, lookups = await refusal(host)
    assert f" network {network}" in reason
    assert lookups == [host.lower().removesuffix(".")]


@pytest.mark.parametrize("host", PUBLIC + [w for h in PUBLIC[:2] for w in wrappings(h).values()])
async def test_it_lets_public_addresses_and_their_ipv6_forms_through(host: str) -> None:
    """The table is not vacuous: the same forms around a public address are allowed."""
    guard = Guard(resolver=TableResolver())
    assert await guard.resolve(host, 443) == [str(ipaddress.ip_address(host))]


def test_the_table_has_a_vector_in_every_denied_range_and_names_only_those() -> None:
    addresses = [parse_ip_literal(host) for host, _ in DENIED_RANGES]
    for network in DEFAULT_DENIED_NETWORKS:
        assert any(a is not None and a in network for a in addresses), f"no vector in {network}"
    named = {ipaddress.ip_network(net) for _, net in DENIED_RANGES + SPELLINGS + NAMES}
    assert named <= set(DEFAULT_DENIED_NETWORKS)

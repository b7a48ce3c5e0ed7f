"""The destination guard: proxy users must never reach anything but the public internet.

Every test uses a fake resolver; nothing here touches DNS or the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_agent.engine.guard import (
    DEFAULT_BLOCKED_PORTS,
    DEFAULT_DENIED_NETWORKS,
    Forbidden,
    Guard,
    ResolveError,
    embedded_ipv4,
    parse_ip_literal,
    system_resolver,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class FakeResolver:
    """Answers from a table and records every call; a list of answers is served one per call."""

    def __init__(self, table: dict[str, Any] | None = None) -> None:
        self.table: dict[str, Any] = {
            "localhost": ["127.0.0.1", "::1"],
            "example.org": [PUBLIC_V4, PUBLIC_V6],
            **(table or {}),
        }
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answer = self.table.get(host, ResolveError(f"{host}: no such name"))
        if isinstance(answer, BaseException):
            raise answer
        if answer and isinstance(answer[0], list):  # a sequence of answers: one per call
            return list(answer.pop(0))
        return list(answer)


def make_guard(**kwargs: Any) -> tuple[Guard, FakeResolver]:
    resolver = FakeResolver(kwargs.pop("table", None))
    return Guard(resolver=resolver, **kwargs), resolver


# One sample address inside every default denied network.
DENIED_SAMPLES = [
    "0.0.0.0",
    "10.1.2.3",
    "100.64.0.1",
    "127.0.0.1",
    "169.254.169.254",
    "172.16.5.4",
    "192.0.0.8",
    "192.0.2.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.251",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fd00::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "100::1",
    "2001:db8::1",
]
EMBEDDED_PRIVATE = [
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:127.0.0.1",
    "::a00:1",  # deprecated IPv4-compatible
    "64:ff9b::a00:1",  # NAT64
    "64:ff9b::7f00:1",
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:a00:1::",  # 6to4
    "2002:7f00:1::",
    "2001:0:a00:1::f7f7:f7f7",  # Teredo, private server 10.0.0.1, client 8.8.8.8
    "2001:0:808:808::f5ff:fffe",  # Teredo, server 8.8.8.8, private client 10.0.0.1
]
LOOPBACK_SPELLINGS = ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "127.0.0.1.", "[::1]"]


@pytest.mark.parametrize("host", DENIED_SAMPLES + EMBEDDED_PRIVATE + LOOPBACK_SPELLINGS)
async def test_it_refuses_non_public_ip_literals_without_asking_the_resolver(host: str) -> None:
    guard, resolver = make_guard()
    with pytest.raises(Forbidden, match=r"^forbidden: "):
        await guard.resolve(host, 443)
    assert resolver.calls == []


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "LocalHost"])
async def test_it_refuses_names_that_resolve_to_loopback(host: str) -> None:
    guard, resolver = make_guard()
    with pytest.raises(Forbidden, match="loopback"):
        await guard.resolve(host, 443)
    assert resolver.calls == [("localhost", 443)]


def test_it_has_a_sample_for_every_default_denied_network() -> None:
    samples = [ipaddress.ip_address(a) for a in DENIED_SAMPLES]
    for net in DEFAULT_DENIED_NETWORKS:
        assert any(a in net for a in samples), net


def test_it_explains_refusals_by_naming_the_network_and_its_kind() -> None:
    guard, _ = make_guard()
    assert guard.check_ip(ipaddress.ip_address("169.254.169.254")) == (
        "169.254.169.254 is in link-local (cloud metadata) network 169.254.0.0/16"
    )
    assert guard.check_ip(ipaddress.ip_address("::ffff:10.1.2.3")) == (
        "10.1.2.3 is in private network 10.0.0.0/8 (embedded in ::ffff:a01:203)"
    )


@pytest.mark.parametrize(
    "host", ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101"]
)
async def test_it_allows_public_addresses(host: str) -> None:
    guard, resolver = make_guard()
    assert await guard.resolve(host, 443) == [str(ipaddress.ip_address(host))]
    assert resolver.calls == []


async def test_it_returns_every_checked_address_of_a_public_name_in_resolver_order() -> None:
    guard, resolver = make_guard()
    assert await guard.resolve("Example.ORG.", 443) == [PUBLIC_V4, PUBLIC_V6]
    assert resolver.calls == [("example.org", 443)]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:10.0.0.1", "::ffff:a00:1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("example.com", None),
        ("1.2.3.4 junk", None),
        ("1.2.3.4.5", None),
        ("", None),
        ("[]", None),
    ],
)
def test_it_parses_ip_literals_in_every_spelling_the_os_accepts(
    host: str, expected: str | None
) -> None:
    parsed = parse_ip_literal(host)
    assert (None if parsed is None else str(parsed)) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("::ffff:10.0.0.1", ["10.0.0.1"]),
        ("::a00:1", ["10.0.0.1"]),
        ("::1", []),
        ("::", []),
        ("64:ff9b::7f00:1", ["127.0.0.1"]),
        ("64:ff9b:1::a00:1", ["10.0.0.1"]),
        ("2002:a00:1::", ["10.0.0.1"]),
        ("2001:0:a00:1::f7f7:f7f7", ["10.0.0.1", "8.8.8.8"]),
        ("2606:4700:4700::1111", []),
    ],
)
def test_it_finds_the_ipv4_addresses_carried_inside_ipv6(ip: str, expected: list[str]) -> None:
    found = embedded_ipv4(ipaddress.IPv6Address(ip))
    assert [str(a) for a in found] == expected


@pytest.mark.parametrize("port", sorted(DEFAULT_BLOCKED_PORTS))
async def test_it_refuses_mail_ports(port: int) -> None:
    guard, resolver = make_guard()
    with pytest.raises(Forbidden, match=f"port {port} is blocked"):
        await guard.resolve("example.org", port)
    assert resolver.calls == []


@pytest.mark.parametrize("port", [80, 443])
async def test_it_allows_web_ports(port: int) -> None:
    guard, _ = make_guard()
    assert guard.check_port(port) is None
    assert await guard.resolve("1.1.1.1", port) == ["1.1.1.1"]


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
async def test_it_refuses_ports_outside_1_to_65535(port: int) -> None:
    guard, _ = make_guard()
    with pytest.raises(Forbidden, match="out of range"):
        await guard.resolve("1.1.1.1", port)


@pytest.mark.parametrize(
    "host", ["", "exa mple.com", "a..b", "x" * 64 + ".com", "a/b", "[example.com]"]
)
async def test_it_refuses_malformed_host_names_without_resolving(host: str) -> None:
    guard, resolver = make_guard()
    with pytest.raises(Forbidden):
        await guard.resolve(host, 443)
    assert resolver.calls == []


async def test_it_lets_the_owner_allow_ipv4_loopback_without_opening_anything_else() -> None:
    guard, _ = make_guard(allowed_networks=["127.0.0.0/8"])
    assert await guard.resolve("127.0.0.1", 80) == ["127.0.0.1"]
    assert await guard.resolve("127.1", 80) == ["127.0.0.1"]
    assert await guard.resolve("::ffff:127.0.0.2", 80) == ["::ffff:7f00:2"]
    for host in ["::1", "10.0.0.1", "localhost"]:
        with pytest.raises(Forbidden):
            await guard.resolve(host, 80)


async def test_it_keeps_blocked_networks_blocked_even_when_allowed() -> None:
    guard, _ = make_guard(allowed_networks=["127.0.0.0/8"], blocked_networks=["127.0.0.5"])
    assert await guard.resolve("127.0.0.6", 80) == ["127.0.0.6"]
    for host in ["127.0.0.5", "::ffff:127.0.0.5", "64:ff9b::7f00:5"]:
        with pytest.raises(Forbidden, match=r"blocked network 127\.0\.0\.5/32"):
            await guard.resolve(host, 80)


async def test_it_only_narrows_when_told_to_narrow() -> None:
    guard, _ = make_guard(allowed_networks=["127.0.0.0/8"])
    guard.narrow(["127.0.0.0/8", "8.8.8.0/24"], ["example.org"])
    for host in ["127.0.0.1", "8.8.8.8", "10.0.0.1", "example.org"]:
        with pytest.raises(Forbidden):
            await guard.resolve(host, 443)
    assert await guard.resolve("1.1.1.1", 443) == ["1.1.1.1"]


async def test_it_ignores_a_narrowing_with_a_bad_entry_as_a_whole() -> None:
    guard, _ = make_guard()
    with pytest.raises(ValueError):
        guard.narrow(["8.8.8.0/24", "not a network"])
    assert await guard.resolve("8.8.8.8", 443) == ["8.8.8.8"]


def test_it_rejects_an_allowed_network_with_host_bits_set() -> None:
    with pytest.raises(ValueError):
        Guard(allowed_networks=["10.0.0.5/8"])


async def test_it_resolves_once_so_a_rebinding_name_cannot_switch_to_private() -> None:
    guard, resolver = make_guard(table={"rebind.test": [[PUBLIC_V4], ["127.0.0.1"]]})
    assert await guard.resolve("rebind.test", 443) == [PUBLIC_V4]
    assert resolver.calls == [("rebind.test", 443)]


async def test_it_refuses_a_name_that_points_even_partly_into_private_space() -> None:
    guard, _ = make_guard(table={"mixed.test": [PUBLIC_V4, "10.0.0.1"]})
    with pytest.raises(Forbidden, match=r"10\.0\.0\.1 is in private network"):
        await guard.resolve("mixed.test", 443)


@pytest.mark.parametrize(
    "answer",
    [ResolveError("NXDOMAIN"), socket.gaierror(socket.EAI_NONAME, "no name"), [], ["bogus"]],
    ids=["resolve-error", "gaierror", "empty", "non-address"],
)
async def test_it_reports_failed_resolution_as_resolve_error(answer: Any) -> None:
    guard, _ = make_guard(table={"broken.test": answer})
    with pytest.raises(ResolveError):
        await guard.resolve("broken.test", 443)


@pytest.mark.parametrize(
    "host", ["EXAMPLE.com.", "example.com", "www.example.com", "a.b.Example.COM"]
)
async def test_it_blocks_a_host_name_and_its_subdomains(host: str) -> None:
    guard, resolver = make_guard(blocked_hosts=["example.com"], table={host: [PUBLIC_V4]})
    with pytest.raises(Forbidden, match="blocked host"):
        await guard.resolve(host, 443)
    assert resolver.calls == []


async def test_it_does_not_block_a_name_that_merely_ends_the_same() -> None:
    guard, _ = make_guard(blocked_hosts=["example.com"], table={"notexample.com": [PUBLIC_V4]})
    assert await guard.resolve("notexample.com", 443) == [PUBLIC_V4]


async def test_it_blocks_a_host_on_one_port_only() -> None:
    table = {"example.com": [PUBLIC_V4], "www.example.com": [PUBLIC_V4]}
    guard, _ = make_guard(blocked_hosts=["example.com:8080"], table=table)
    for host in ["example.com", "www.example.com"]:
        with pytest.raises(Forbidden, match=r"example\.com:8080"):
            await guard.resolve(host, 8080)
        assert await guard.resolve(host, 443) == [PUBLIC_V4]


async def test_it_blocks_ip_hosts_also_when_a_name_resolves_to_them() -> None:
    table = {"a.test": ["1.2.3.4"], "b.test": ["5.6.7.8"]}
    guard, _ = make_guard(blocked_hosts=["1.2.3.4", "5.6.7.8:80"], table=table)
    for host in ["1.2.3.4", "a.test", "::ffff:1.2.3.4"]:
        with pytest.raises(Forbidden):
            await guard.resolve(host, 443)
    with pytest.raises(Forbidden, match=r"5\.6\.7\.8:80"):
        await guard.resolve("b.test", 80)
    assert await guard.resolve("b.test", 443) == ["5.6.7.8"]


async def test_it_matches_international_names_in_their_idna_form() -> None:
    guard, resolver = make_guard(blocked_hosts=["bücher.example"])
    for host in ["BÜCHER.example", "xn--bcher-kva.example", "shop.bücher.example"]:
        with pytest.raises(Forbidden):
            await guard.resolve(host, 443)
    assert resolver.calls == []


async def test_it_turns_os_resolver_answers_into_unique_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fake_getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        assert kwargs["type"] == socket.SOCK_STREAM
        v4 = (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port))
        v6 = (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (PUBLIC_V6, port, 0, 0))
        return [v6, v4, v6]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)
    assert await system_resolver("example.org", 443) == [PUBLIC_V6, PUBLIC_V4]


async def test_it_turns_os_resolver_failures_into_resolve_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing_getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", failing_getaddrinfo)
    with pytest.raises(ResolveError, match="Name or service not known"):
        await system_resolver("nowhere.invalid", 443)


DENIED_V4 = [n for n in DEFAULT_DENIED_NETWORKS if isinstance(n, ipaddress.IPv4Network)]


def _wrappings(v4: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    """The IPv6 forms that deliver to *v4*: mapped, NAT64 and 6to4."""
    return [
        ipaddress.IPv6Address(0xFFFF << 32 | int(v4)),
        ipaddress.IPv6Address(0x64FF9B << 96 | int(v4)),
        ipaddress.IPv6Address(0x2002 << 112 | int(v4) << 80),
    ]


denied_v4 = st.sampled_from(DENIED_V4).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(
        ipaddress.IPv4Address
    )
)
public_v4 = (
    st.integers(0, 2**32 - 1)
    .map(ipaddress.IPv4Address)
    .filter(lambda a: not any(a in n for n in DENIED_V4))
)


@given(denied_v4)
def test_it_refuses_every_ipv6_wrapping_of_a_denied_ipv4(v4: ipaddress.IPv4Address) -> None:
    guard = Guard()
    assert guard.check_ip(v4) is not None
    for wrapped in _wrappings(v4):
        assert guard.check_ip(wrapped) is not None, wrapped


@given(public_v4)
def test_it_allows_every_ipv6_wrapping_of_a_public_ipv4(v4: ipaddress.IPv4Address) -> None:
    guard = Guard()
    assert guard.check_ip(v4) is None
    for wrapped in _wrappings(v4):
        assert guard.check_ip(wrapped) is None, wrapped


@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.integers(0, 2**32 - 1))
def test_it_never_allows_more_after_narrowing(base: int, prefix: int, probe: int) -> None:
    guard = Guard(allowed_networks=["127.0.0.0/8"])
    addr = ipaddress.IPv4Address(probe)
    before = guard.check_ip(addr)
    guard.narrow([f"{ipaddress.IPv4Address(base)}/{prefix}"])
    assert before is None or guard.check_ip(addr) is not None


async def test_it_tells_the_user_a_name_is_refused_without_the_private_address() -> None:
    guard, _ = make_guard(table={"intranet.test": ["10.1.2.3"]})
    with pytest.raises(Forbidden) as refused:
        await guard.resolve("intranet.test", 443)
    assert "10.1.2.3" in str(refused.value)  # the owner's log has the detail
    assert "10.1.2.3" not in refused.value.public
    assert "intranet.test" in refused.value.public

"""Trusted reverse proxies: who the client really is, and which scheme it used.

The ASGI wrapper is driven with real scopes as daphne builds them; the app
behind it only records the scope it was handed.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from server.forwarded import (
    behind_proxies,
    client_address,
    forwarded_scheme,
    parse_address,
    parse_trusted_proxies,
)

NGINX = parse_trusted_proxies("127.0.0.1")
TWO_TIERS = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8")

# ------------------------------------------------------------------ the setting


def test_it_reads_addresses_and_networks_of_both_families() -> None:
    assert parse_trusted_proxies(" 127.0.0.1 , 10.0.0.0/8,::1, 2001:db8::/32 ") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("2001:db8::/32"),
    )


def test_nothing_configured_trusts_nobody() -> None:
    assert parse_trusted_proxies("") == ()
    assert parse_trusted_proxies(" , ") == ()


def test_an_ipv4_mapped_entry_matches_the_ipv4_peer() -> None:
    assert parse_trusted_proxies("::ffff:10.0.0.0/104") == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.1/8", "300.1.1.1", "10.0.0.0/33", "*"])
def test_a_bad_entry_is_an_error_that_names_it_and_the_setting(entry: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_trusted_proxies(f"127.0.0.1,{entry}")
    assert "EXITPOOL_TRUSTED_PROXIES" in str(raised.value)
    assert repr(entry) in str(raised.value)


# ------------------------------------------------------------------ addresses as proxies write them


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ],
)
def test_it_reads_an_address_with_or_without_port(text: str, expected: str) -> None:
    assert str(parse_address(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unknown",
        "_hidden",
        "evil.example",
        "1.2.3",
        "1.2.3.4:80:90",
        "1.2.3.4:",
        "1.2.3.4:x",
        "[::1",
        "[::1]x",
        "[::1]:",
        "<script>",
    ],
)
def test_anything_else_is_not_an_address(text: str) -> None:
    assert parse_address(text) is None


# ------------------------------------------------------------------ the walk from the right


def test_a_trusted_peer_gives_the_address_it_forwarded() -> None:
    assert client_address("127.0.0.1", ["203.0.113.7"], NGINX) == "203.0.113.7"


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert client_address("127.0.0.2", ["203.0.113.7"], NGINX) == "127.0.0.2"
    assert client_address("198.51.100.1", ["127.0.0.1"], NGINX) == "198.51.100.1"


def test_a_trusted_peer_without_the_header_is_the_client() -> None:
    assert client_address("127.0.0.1", [], NGINX) == "127.0.0.1"


def test_what_the_client_wrote_left_of_the_proxy_entry_is_ignored() -> None:
    # The client sent "X-Forwarded-For: 198.51.100.66"; nginx appended the real peer.
    assert client_address("127.0.0.1", ["198.51.100.66, 203.0.113.7"], NGINX) == "203.0.113.7"


def test_a_client_cannot_pass_for_a_trusted_proxy_beyond_the_real_one() -> None:
    forged = "203.0.113.99, 127.0.0.1, 203.0.113.7"
    assert client_address("127.0.0.1", [forged], NGINX) == "203.0.113.7"


def test_it_walks_through_every_trusted_hop_of_a_chain() -> None:
    # client → 10.1.2.3 (load balancer) → 127.0.0.1 (nginx) → us
    chain = "198.51.100.66, 203.0.113.7, 10.1.2.3"
    assert client_address("127.0.0.1", [chain], TWO_TIERS) == "203.0.113.7"


def test_several_header_lines_read_as_one_list_in_order() -> None:
    lines = ["198.51.100.66", "203.0.113.7, 10.1.2.3"]
    assert client_address("127.0.0.1", lines, TWO_TIERS) == "203.0.113.7"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    assert client_address("127.0.0.1", ["10.0.0.5, 10.1.2.3"], TWO_TIERS) == "10.0.0.5"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("garbage", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("203.0.113.7, garbage", "127.0.0.1"),
        ("203.0.113.7, , 10.1.2.3", "10.1.2.3"),
        ("garbage, 203.0.113.7", "203.0.113.7"),
    ],
)
def test_an_entry_that_is_not_an_address_ends_the_walk_at_the_last_trusted_hop(
    header: str, expected: str
) -> None:
    assert client_address("127.0.0.1", [header], TWO_TIERS) == expected


def test_ipv6_proxies_and_clients() -> None:
    trusted = parse_trusted_proxies("::1, fd00::/8")
    assert client_address("::1", ["2001:db8::7, fd00::2"], trusted) == "2001:db8::7"
    assert client_address("::1", ["[2001:db8::7]:5000"], trusted) == "2001:db8::7"
    assert client_address("2001:db8::1", ["2001:db8::7"], trusted) == "2001:db8::1"


def test_a_dual_stack_listener_sees_the_proxy_as_ipv4_mapped_and_still_trusts_it() -> None:
    assert client_address("::ffff:127.0.0.1", ["203.0.113.7"], NGINX) == "203.0.113.7"


# ------------------------------------------------------------------ the scheme


@pytest.mark.parametrize(
    ("scope_type", "current", "header", "expected"),
    [
        ("http", "http", "https", "https"),
        ("http", "https", "http", "http"),
        ("websocket", "ws", "https", "wss"),
        ("websocket", "ws", "wss", "wss"),
        ("websocket", "wss", "http", "ws"),
        ("http", "http", " HTTPS ", "https"),
        ("http", "http", "http, https", "https"),
        ("http", "http", "https, http", "http"),
        ("http", "http", "gopher", "http"),
        ("websocket", "ws", "", "ws"),
    ],
)
def test_the_nearest_proxys_proto_sets_the_scheme_of_the_right_family(
    scope_type: str, current: str, header: str, expected: str
) -> None:
    assert forwarded_scheme(scope_type, current, header) == expected


# ------------------------------------------------------------------ the ASGI wrapper


class Recorder:
    """The app behind the wrapper: keeps the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(dict(scope))


def scope_from(peer: str, *headers: tuple[bytes, bytes], kind: str = "http") -> dict[str, Any]:
    return {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "path": "/ws/agent",
        "client": [peer, 40000],
        "server": ["127.0.0.1", 8000],
        "headers": [(b"host", b"exitpool.example.com"), *headers],
    }


async def seen_by_app(scope: dict[str, Any], trusted: str = "127.0.0.1") -> dict[str, Any]:
    recorder = Recorder()
    await behind_proxies(recorder, parse_trusted_proxies(trusted))(scope, _receive, _send)
    return recorder.scopes[0]


async def _receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def _send(message: dict[str, Any]) -> None:
    raise AssertionError(f"the wrapper itself sent {message}")


async def test_an_agent_behind_nginx_is_seen_with_its_own_address_and_wss() -> None:
    scope = scope_from(
        "127.0.0.1",
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-proto", b"https"),
        kind="websocket",
    )
    seen = await seen_by_app(scope)
    assert seen["client"] == ["203.0.113.7", 0]
    assert seen["scheme"] == "wss"
    assert scope["client"] == ["127.0.0.1", 40000], "the caller's scope is left as it was"


async def test_header_names_are_matched_in_any_case() -> None:
    scope = scope_from(
        "127.0.0.1", (b"X-Forwarded-For", b"203.0.113.7"), (b"X-Forwarded-Proto", b"https")
    )
    seen = await seen_by_app(scope)
    assert (seen["client"], seen["scheme"]) == (["203.0.113.7", 0], "https")


async def test_an_untrusted_peers_headers_change_nothing() -> None:
    scope = scope_from(
        "127.0.0.2", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")
    )
    assert await seen_by_app(scope) == scope


async def test_a_trusted_peer_without_headers_changes_nothing() -> None:
    scope = scope_from("127.0.0.1")
    assert await seen_by_app(scope) == scope


async def test_proto_alone_is_applied_and_the_client_kept() -> None:
    seen = await seen_by_app(scope_from("127.0.0.1", (b"x-forwarded-proto", b"https")))
    assert (seen["client"], seen["scheme"]) == (["127.0.0.1", 40000], "https")


async def test_bytes_that_are_not_text_do_not_break_it() -> None:
    scope = scope_from("127.0.0.1", (b"x-forwarded-for", b"\xff\xfe, 203.0.113.7\x00"))
    assert (await seen_by_app(scope))["client"] == ["127.0.0.1", 40000]


async def test_a_scope_without_a_client_passes_through() -> None:
    scope = scope_from("127.0.0.1", (b"x-forwarded-for", b"203.0.113.7"))
    scope["client"] = None
    assert await seen_by_app(scope) == scope


async def test_lifespan_and_other_scopes_pass_through() -> None:
    scope = {"type": "lifespan"}
    assert await seen_by_app(scope) == scope


def test_with_no_trusted_proxies_the_app_is_not_wrapped() -> None:
    recorder = Recorder()
    assert behind_proxies(recorder, ()) is recorder

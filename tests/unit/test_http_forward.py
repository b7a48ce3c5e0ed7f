"""Turning a proxy request into what the target sees: destinations and the forwarded head."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.http_forward import (
    BadTarget,
    Destination,
    forwarded_head,
    parse_absolute_url,
    parse_authority,
)

EXAMPLE = Destination("example.com", 80)


def head_lines(head: bytes) -> list[bytes]:
    assert head.endswith(b"\r\n\r\n")
    return head[: -len(b"\r\n\r\n")].split(b"\r\n")


# ------------------------------------------------------------------ parse_authority


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("example.com:443", Destination("example.com", 443)),
        ("Example.COM:8443", Destination("example.com", 8443)),
        ("  example.com:443 ", Destination("example.com", 443)),
        ("93.184.215.14:1", Destination("93.184.215.14", 1)),
        ("example.com:65535", Destination("example.com", 65535)),
        ("[::1]:443", Destination("::1", 443)),
        ("[2001:DB8::1]:8080", Destination("2001:db8::1", 8080)),
    ],
)
def test_it_parses_host_and_port(authority: str, expected: Destination) -> None:
    assert parse_authority(authority) == expected


def test_it_requires_a_port_when_there_is_no_default() -> None:
    with pytest.raises(BadTarget, match="CONNECT needs host:port"):
        parse_authority("example.com")
    with pytest.raises(BadTarget, match="CONNECT needs host:port"):
        parse_authority("[::1]")


def test_it_uses_the_default_port_when_none_is_given() -> None:
    assert parse_authority("example.com", default_port=80) == Destination("example.com", 80)
    assert parse_authority("[::1]", default_port=80) == Destination("::1", 80)


@pytest.mark.parametrize(
    "authority",
    ["example.com:0", "example.com:65536", "example.com:99999999999", "[::1]:0"],
)
def test_it_rejects_ports_out_of_range(authority: str) -> None:
    with pytest.raises(BadTarget):
        parse_authority(authority)


@pytest.mark.parametrize(
    "authority",
    ["example.com:http", "example.com:-1", "example.com:+80", "example.com:8 0", "[::1]:x"],
)
def test_it_rejects_ports_that_are_not_numbers(authority: str) -> None:
    with pytest.raises(BadTarget, match="bad port"):
        parse_authority(authority)


@pytest.mark.parametrize("authority", ["example.com:\xb2", "example.com:\xb9\xb3"])
def test_it_rejects_latin1_superscript_digits_as_a_bad_target(authority: str) -> None:
    # The gateway decodes the request target as latin-1, so these reach it from any client.
    with pytest.raises(BadTarget):
        parse_authority(authority)


@pytest.mark.parametrize(
    "authority",
    [
        "",
        ":443",
        "[]:443",
        "user@example.com:443",
        "example.com/path:443",
        "exa mple.com:443",
        "exa\tmple.com:443",
        "[::1]junk:443",
    ],
)
def test_it_rejects_junk_destinations(authority: str) -> None:
    with pytest.raises(BadTarget):
        parse_authority(authority)


def test_it_rejects_text_after_a_bracketed_host_even_with_a_default_port() -> None:
    with pytest.raises(BadTarget):
        parse_authority("[::1]junk", default_port=80)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_it_answers_any_ascii_text_with_a_destination_or_bad_target(authority: str) -> None:
    try:
        destination = parse_authority(authority)
    except BadTarget:
        return
    assert 1 <= destination.port <= 65535
    assert destination.host


def test_it_writes_destinations_with_brackets_around_ipv6_hosts() -> None:
    assert str(Destination("example.com", 443)) == "example.com:443"
    assert str(Destination("::1", 443)) == "[::1]:443"


# ------------------------------------------------------------------ parse_absolute_url


@pytest.mark.parametrize(
    ("url", "destination", "target"),
    [
        ("http://example.com/", EXAMPLE, "/"),
        ("http://example.com", EXAMPLE, "/"),
        ("http://example.com:8080/a/b", Destination("example.com", 8080), "/a/b"),
        ("http://example.com/search?q=1&r=two", EXAMPLE, "/search?q=1&r=two"),
        ("http://example.com/page#section", EXAMPLE, "/page"),
        ("HTTP://Example.COM/Path", EXAMPLE, "/Path"),
        ("http://[::1]:8080/x", Destination("::1", 8080), "/x"),
        ("http://[::1]/x", Destination("::1", 80), "/x"),
    ],
)
def test_it_splits_an_absolute_url_into_destination_and_origin_form(
    url: str, destination: Destination, target: str
) -> None:
    assert parse_absolute_url(url) == (destination, target)


def test_it_sends_https_urls_to_connect() -> None:
    with pytest.raises(BadTarget, match="CONNECT"):
        parse_absolute_url("https://example.com/")


@pytest.mark.parametrize("url", ["/index.html", "*", "example.com/path", "ftp://example.com/"])
def test_it_rejects_requests_that_are_not_absolute_http(url: str) -> None:
    with pytest.raises(BadTarget, match="absolute-form"):
        parse_absolute_url(url)


@pytest.mark.parametrize(
    "url",
    ["http://user:pw@example.com/", "http://user@example.com/", "http://@example.com/"],
)
def test_it_rejects_userinfo_in_the_url(url: str) -> None:
    with pytest.raises(BadTarget):
        parse_absolute_url(url)


@pytest.mark.parametrize(
    "url",
    ["http:///path", "http://example.com:0/", "http://example.com:http/", "http://exa mple.com/"],
)
def test_it_rejects_bad_authorities(url: str) -> None:
    with pytest.raises(BadTarget):
        parse_absolute_url(url)


@pytest.mark.parametrize("url", ["http://[::1/", "http://[::1]junk/", "http://example.com:\xb2/"])
def test_it_rejects_malformed_authorities_as_a_bad_target(url: str) -> None:
    with pytest.raises(BadTarget):
        parse_absolute_url(url)


# ------------------------------------------------------------------ forwarded_head


def test_it_drops_proxy_and_hop_by_hop_headers_and_keeps_the_rest_in_order() -> None:
    headers = [
        (b"Host", b"example.com"),
        (b"User-Agent", b"curl/8.5"),
        (b"Proxy-Authorization", b"Basic YWxpY2U6c2VjcmV0"),
        (b"Proxy-Connection", b"Keep-Alive"),
        (b"Keep-Alive", b"timeout=5"),
        (b"TE", b"trailers"),
        (b"Trailer", b"X-Checksum"),
        (b"Upgrade", b"h2c"),
        (b"X-Custom-Header", b"Mixed Case Value"),
        (b"Connection", b"keep-alive, X-Private, Upgrade"),
        (b"x-private", b"secret"),
        (b"Accept", b"*/*"),
    ]

    head = forwarded_head(b"GET", "/path?q=1", "1.1", headers, EXAMPLE)

    assert head_lines(head) == [
        b"GET /path?q=1 HTTP/1.1",
        b"Host: example.com",
        b"User-Agent: curl/8.5",
        b"X-Custom-Header: Mixed Case Value",
        b"Accept: */*",
    ]


@pytest.mark.parametrize(
    "name", [b"proxy-authorization", b"PROXY-AUTHORIZATION", b"Proxy-Authorization"]
)
def test_it_never_forwards_proxy_authorization_in_any_case(name: bytes) -> None:
    head = forwarded_head(b"GET", "/", "1.1", [(name, b"Basic eDp5")], EXAMPLE)

    assert b"eDp5" not in head
    assert b"authorization" not in head.lower()


def test_it_drops_headers_named_by_proxy_connection_too() -> None:
    headers = [(b"Proxy-Connection", b"X-Hop"), (b"X-Hop", b"1"), (b"X-Keep", b"2")]

    head = forwarded_head(b"GET", "/", "1.1", headers, EXAMPLE)

    assert head_lines(head)[1:] == [b"Host: example.com", b"X-Keep: 2"]


def test_it_adds_a_host_header_right_after_the_request_line_when_missing() -> None:
    head = forwarded_head(b"POST", "/form", "1.1", [(b"Content-Length", b"3")], EXAMPLE)

    assert head_lines(head) == [b"POST /form HTTP/1.1", b"Host: example.com", b"Content-Length: 3"]


def test_it_puts_a_port_other_than_80_in_the_added_host_header() -> None:
    head = forwarded_head(b"GET", "/", "1.1", [], Destination("example.com", 8080))

    assert head_lines(head) == [b"GET / HTTP/1.1", b"Host: example.com:8080"]


def test_it_brackets_an_ipv6_host_in_the_added_host_header() -> None:
    with_port = forwarded_head(b"GET", "/", "1.1", [], Destination("2001:db8::1", 8080))
    default_port = forwarded_head(b"GET", "/", "1.1", [], Destination("2001:db8::1", 80))

    assert head_lines(with_port)[1] == b"Host: [2001:db8::1]:8080"
    assert head_lines(default_port)[1] == b"Host: [2001:db8::1]"


def test_it_keeps_the_clients_own_host_header() -> None:
    headers = [(b"Accept", b"*/*"), (b"host", b"Example.com")]

    head = forwarded_head(b"GET", "/", "1.1", headers, Destination("example.com", 8080))

    assert head_lines(head)[1:] == [b"Accept: */*", b"host: Example.com"]


def test_it_keeps_connection_close_when_the_client_asked_for_it() -> None:
    headers = [(b"Host", b"example.com"), (b"Connection", b"Close")]

    head = forwarded_head(b"GET", "/", "1.0", headers, EXAMPLE)

    assert head_lines(head) == [b"GET / HTTP/1.0", b"Host: example.com", b"Connection: close"]


def test_it_adds_no_connection_header_when_the_client_did_not_ask_to_close() -> None:
    headers = [(b"Host", b"example.com"), (b"Connection", b"keep-alive")]

    head = forwarded_head(b"GET", "/", "1.1", headers, EXAMPLE)

    assert b"connection" not in head.lower()


def test_it_keeps_the_upgrade_headers_of_an_upgrade_request() -> None:
    headers = [
        (b"Host", b"example.com"),
        (b"Connection", b"Upgrade"),
        (b"Upgrade", b"websocket"),
        (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"Sec-WebSocket-Version", b"13"),
        (b"Proxy-Authorization", b"Basic eDp5"),
    ]

    head = forwarded_head(b"GET", "/chat", "1.1", headers, EXAMPLE, upgrade=True)

    assert head_lines(head) == [
        b"GET /chat HTTP/1.1",
        b"Host: example.com",
        b"Upgrade: websocket",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
        b"Connection: Upgrade",
    ]


def test_it_drops_upgrade_headers_when_the_request_is_not_an_upgrade() -> None:
    headers = [(b"Host", b"example.com"), (b"Connection", b"Upgrade"), (b"Upgrade", b"h2c")]

    head = forwarded_head(b"GET", "/", "1.1", headers, EXAMPLE, upgrade=False)

    assert head_lines(head) == [b"GET / HTTP/1.1", b"Host: example.com"]


def test_it_drops_an_upgrade_header_that_connection_does_not_list() -> None:
    headers = [(b"Host", b"example.com"), (b"Upgrade", b"websocket")]

    head = forwarded_head(b"GET", "/", "1.1", headers, EXAMPLE, upgrade=True)

    assert head_lines(head) == [b"GET / HTTP/1.1", b"Host: example.com"]

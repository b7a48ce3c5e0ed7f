"""Checking a caller's ``POST /api/v1/fetch`` JSON before anything is sent."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest

from server.config import ServerConfig

if TYPE_CHECKING:
    from server.api.fetch import FetchRequest

CONFIG = ServerConfig(api_max_request_body=100, api_default_timeout=30, api_max_timeout=120)


@pytest.fixture(autouse=True)
def apps(django_db: None) -> None:
    """server.api imports the models: Django's apps must be loaded."""


def parse(**data: Any) -> FetchRequest:
    from server.api.fetch import FetchRequest

    return FetchRequest.parse({"url": "http://example.test/", **data}, "alice", CONFIG)


def refused(status: int = 400, **data: Any) -> str:
    from server.api.errors import ApiError
    from server.api.fetch import FetchRequest

    with pytest.raises(ApiError) as raised:
        FetchRequest.parse(data, "alice", CONFIG)
    assert raised.value.status == status
    assert raised.value.code == ("body-too-large" if status == 413 else "bad-request")
    return str(raised.value)


def test_a_bare_url_is_a_get_with_the_default_timeout_on_any_agent():
    fetch = parse()
    assert fetch.request.method == "GET"
    assert fetch.request.scheme == "http"
    assert (fetch.request.destination.host, fetch.request.destination.port) == ("example.test", 80)
    assert fetch.request.target == "/"
    assert fetch.request.body == b""
    assert fetch.timeout == 30
    assert (fetch.route.user, fetch.route.session, fetch.route.agent) == ("alice", None, None)


def test_session_and_agent_route_as_the_proxy_username_options_do():
    fetch = parse(session="abc", agent="office-pc-7")
    assert (fetch.route.user, fetch.route.session, fetch.route.agent) == (
        "alice",
        "abc",
        "office-pc-7",
    )


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "target"),
    [
        ("https://Example.TEST/a/b?c=d#frag", "https", "example.test", 443, "/a/b?c=d"),
        ("http://127.0.0.3:8080", "http", "127.0.0.3", 8080, "/"),
        ("https://[2001:db8::1]:8443/x", "https", "2001:db8::1", 8443, "/x"),
        ("http://bücher.example/", "http", "xn--bcher-kva.example", 80, "/"),
    ],
)
def test_urls_become_a_destination_and_an_origin_form_target(
    url: str, scheme: str, host: str, port: int, target: str
):
    request = parse(url=url).request
    assert (request.scheme, request.destination.host, request.destination.port) == (
        scheme,
        host,
        port,
    )
    assert request.target == target


def test_the_method_is_upper_cased_and_the_timeout_capped():
    fetch = parse(method="post", timeout=10_000)
    assert fetch.request.method == "POST"
    assert fetch.timeout == 120
    assert parse(timeout=0.5).timeout == 0.5


def test_headers_as_an_object_or_as_pairs_with_repeats():
    assert parse(headers={"A": "1", "B": "2"}).request.headers == [("A", "1"), ("B", "2")]
    pairs = parse(headers=[["A", "1"], ["A", "2"]]).request.headers
    assert pairs == [("A", "1"), ("A", "2")]


def test_a_body_as_text_is_utf8_and_as_base64_is_bytes():
    assert parse(body="é").request.body == "é".encode()
    assert parse(body_base64=base64.b64encode(b"\x00\xff").decode()).request.body == b"\x00\xff"


def test_a_body_of_exactly_the_limit_passes_and_one_more_byte_is_413():
    assert len(parse(body="x" * 100).request.body) == 100
    assert len(parse(body_base64=base64.b64encode(b"x" * 100).decode()).request.body) == 100
    url = "http://example.test/"
    refused(413, url=url, body="x" * 101)
    refused(413, url=url, body="é" * 51)  # 102 bytes once encoded
    refused(413, url=url, body_base64=base64.b64encode(b"x" * 101).decode())
    refused(413, url=url, body_base64="A" * 10_000)  # too long to be worth decoding


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        ({}, "url is required"),
        ({"url": 5}, "url is required"),
        ({"url": "example.test/path"}, "http:// or https://"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "http:///path"}, "no host"),
        ({"url": "http://a b/"}, "bad url"),
        ({"url": "http://a\x00b/"}, "not a host name"),
        ({"url": "http://example.test/a b"}, "path"),
        ({"url": "http://example.test/é"}, "path"),
        ({"url": "http://[::1/"}, "bad url"),
        ({"url": "http://example.test:0/"}, "bad url"),
        ({"url": "http://u:p@example.test/"}, "Authorization header"),
        ({"url": "http://example.test/", "method": ""}, "method"),
        ({"url": "http://example.test/", "method": "G E T"}, "method"),
        ({"url": "http://example.test/", "headers": "A: 1"}, "headers must be"),
        ({"url": "http://example.test/", "headers": [["A"]]}, "headers must be"),
        ({"url": "http://example.test/", "headers": {"A:": "1"}}, "bad header name"),
        ({"url": "http://example.test/", "headers": {"A": "1\nB: 2"}}, "header A"),
        ({"url": "http://example.test/", "headers": {"A": "€"}}, "header A"),
        ({"url": "http://example.test/", "headers": {"A": 1}}, "header A"),
        ({"url": "http://example.test/", "body": b"x".hex(), "body_base64": ""}, "not both"),
        ({"url": "http://example.test/", "body": 5}, "body must be a string"),
        ({"url": "http://example.test/", "body": "\ud800"}, "not valid Unicode"),
        ({"url": "http://example.test/", "body_base64": "a$=="}, "not valid base64"),
        ({"url": "http://example.test/", "timeout": -1}, "timeout"),
        ({"url": "http://example.test/", "timeout": "5"}, "timeout"),
        ({"url": "http://example.test/", "timeout": True}, "timeout"),
        ({"url": "http://example.test/", "session": ""}, "session"),
        ({"url": "http://example.test/", "agent": 7}, "agent"),
        ({"url": "http://example.test/", "proxy": "x"}, "unknown field(s): proxy"),
    ],
)
def test_bad_fetches_are_refused_with_a_reason(data: dict[str, Any], hint: str):
    assert hint in refused(**data)


def test_the_request_must_be_an_object():
    from server.api.errors import ApiError
    from server.api.fetch import FetchRequest

    with pytest.raises(ApiError, match="JSON object"):
        FetchRequest.parse(["http://example.test/"], "alice", CONFIG)

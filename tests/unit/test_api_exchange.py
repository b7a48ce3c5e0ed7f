"""The API fetch's HTTP/1.1 halves without a network: the request head and the response parser."""

from __future__ import annotations

import pytest

from server.api.errors import ApiError
from server.api.exchange import Request, ResponseReader
from server.http_forward import Destination


def request(**fields: object) -> Request:
    values: dict[str, object] = {
        "method": "GET",
        "scheme": "http",
        "destination": Destination("example.test", 80),
        "target": "/",
        "headers": [],
        "body": b"",
    }
    values.update(fields)
    return Request(**values)  # type: ignore[arg-type]


def lines(req: Request) -> list[str]:
    head = req.head().decode("latin-1")
    assert head.endswith("\r\n\r\n")
    return head[:-4].split("\r\n")


def reader(**limits: object) -> ResponseReader:
    values: dict[str, object] = {"max_head": 4096, "max_body": 1000}
    values.update(limits)
    return ResponseReader(**values)  # type: ignore[arg-type]


def feed_bytewise(response: ResponseReader, data: bytes) -> None:
    for i in range(len(data)):
        response.feed(data[i : i + 1])


# ------------------------------------------------------------------ request head


def test_the_head_names_the_host_without_a_default_port_and_closes():
    assert lines(request(target="/a?b=1")) == [
        "GET /a?b=1 HTTP/1.1",
        "Host: example.test",
        "Connection: close",
    ]
    tls = request(scheme="https", destination=Destination("example.test", 443))
    assert "Host: example.test" in lines(tls)
    odd = request(scheme="https", destination=Destination("::1", 8443))
    assert "Host: [::1]:8443" in lines(odd)
    plain_on_443 = request(destination=Destination("example.test", 443))
    assert "Host: example.test:443" in lines(plain_on_443)


def test_the_caller_s_headers_go_in_order_without_hop_by_hop_or_framing():
    req = request(
        method="POST",
        headers=[
            ("X-A", "1"),
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "999"),
            ("Proxy-Authorization", "Basic eA=="),
            ("Expect", "100-continue"),
            ("X-A", "2"),
            ("Host", "other.test"),
        ],
        body=b"hello",
    )
    assert lines(req) == [
        "POST / HTTP/1.1",
        "X-A: 1",
        "X-A: 2",
        "Host: other.test",
        "Content-Length: 5",
        "Connection: close",
    ]


def test_a_post_without_a_body_says_content_length_0_and_a_get_says_nothing():
    assert "Content-Length: 0" in lines(request(method="POST"))
    assert not any(line.startswith("Content-Length") for line in lines(request()))


# ------------------------------------------------------------------ response parser


def test_it_reads_a_content_length_response_fed_byte_by_byte():
    response = reader()
    feed_bytewise(response, b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX: y\r\n\r\nhello")
    assert response.complete
    assert response.status == 201
    assert response.headers == [("Content-Length", "5"), ("X", "y")]
    assert bytes(response.body) == b"hello"


def test_repeated_headers_survive_in_order():
    response = reader()
    response.feed(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nContent-Length: 0\r\n"
        b"Set-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n"
    )
    assert response.complete
    cookies = [value for name, value in response.headers if name.lower() == "set-cookie"]
    assert cookies == ["a=1", "b=2", "c=3"]


def test_it_removes_chunked_framing():
    response = reader()
    feed_bytewise(
        response,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    assert response.complete
    assert bytes(response.body) == b"hello world"


def test_a_body_without_framing_ends_with_the_connection():
    response = reader()
    response.feed(b"HTTP/1.1 200 OK\r\n\r\npart one, ")
    response.feed(b"part two")
    assert not response.complete
    response.feed_eof()
    assert response.complete
    assert bytes(response.body) == b"part one, part two"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Le", "headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "body"),
        (b"", "headers"),
    ],
)
def test_a_response_cut_short_is_a_bad_response(data: bytes, where: str):
    response = reader()
    response.feed(data)
    with pytest.raises(ApiError) as raised:
        response.feed_eof()
    assert (raised.value.status, raised.value.code) == (502, "bad-response")
    assert where in str(raised.value)


def test_interim_responses_are_skipped():
    response = reader()
    response.feed(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    assert response.complete
    assert response.status == 200
    assert response.headers == [("Content-Length", "2")]
    assert bytes(response.body) == b"ok"


def test_a_head_response_ends_after_its_head():
    response = reader(head_only=True)
    response.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
    assert response.complete
    assert response.body == b""


def test_a_body_over_the_limit_is_refused_by_its_content_length_before_it_arrives():
    response = reader(max_body=10)
    with pytest.raises(ApiError) as raised:
        response.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    assert (raised.value.status, raised.value.code) == (502, "response-too-large")


def test_a_body_of_exactly_the_limit_is_fine_and_one_byte_more_is_not():
    exact = reader(max_body=10)
    exact.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n")
    assert exact.complete
    over = reader(max_body=10)
    over.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n")
    with pytest.raises(ApiError) as raised:
        over.feed(b"1\r\nx\r\n")
    assert raised.value.code == "response-too-large"
    unframed = reader(max_body=10)
    unframed.feed(b"HTTP/1.1 200 OK\r\n\r\n0123456789")
    with pytest.raises(ApiError, match="over 10 bytes"):
        unframed.feed(b"!")


def test_a_head_over_the_limit_is_a_bad_response():
    response = reader(max_head=100)
    with pytest.raises(ApiError) as raised:
        feed_bytewise(response, b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 200)
    assert raised.value.code == "bad-response"
    assert "100 bytes" in str(raised.value)


def test_malformed_http_is_a_bad_response():
    with pytest.raises(ApiError) as raised:
        reader().feed(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert (raised.value.status, raised.value.code) == (502, "bad-response")

"""A user's request leaves through an agent: absolute-form, CONNECT+TLS, big bodies, errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time

import pytest
import requests

from tests.integration.conftest import HEADER_TIMEOUT, PASSWORD, RESPONSE_TIMEOUT, USER, proxies
from tests.support.processes import AgentProcess, ServerProcess
from tests.support.target import expected_bytes, free_port

pytestmark = pytest.mark.usefixtures("agent_a")


def test_it_carries_an_absolute_form_get_out_through_the_agent(server, target):
    response = requests.get(f"{target.url}/ip", proxies=proxies(server), timeout=10)
    assert response.status_code == 200
    assert response.text == "127.0.0.2"  # the agent's source address, not the server's


def test_it_tunnels_connect_with_tls_end_to_end(server, tls_target, ca_bundle):
    response = requests.get(
        f"{tls_target.url}/ip", proxies=proxies(server), verify=ca_bundle, timeout=10
    )
    assert response.status_code == 200
    assert response.text == "127.0.0.2"


def test_it_removes_proxy_headers_and_sends_origin_form(server, target):
    response = requests.get(
        f"{target.url}/echo-headers?a=1",
        proxies=proxies(server),
        headers={"X-Custom": "kept", "Proxy-Connection": "keep-alive"},
        timeout=10,
    )
    seen = response.json()
    assert seen["path_qs"] == "/echo-headers?a=1"
    assert "proxy-authorization" not in seen["headers"]
    assert "proxy-connection" not in seen["headers"]
    assert seen["headers"]["x-custom"] == "kept"
    assert seen["headers"]["host"] == f"127.0.0.3:{target.port}"


def test_it_downloads_20_mb_intact_both_ways_of_proxying(server, target, tls_target, ca_bundle):
    size = 20 * 1024 * 1024
    want = hashlib.sha256(expected_bytes(size)).hexdigest()
    for url, verify in ((target.url, True), (tls_target.url, ca_bundle)):
        response = requests.get(
            f"{url}/bytes/{size}", proxies=proxies(server), verify=verify, timeout=60
        )
        assert response.status_code == 200
        assert len(response.content) == size
        assert hashlib.sha256(response.content).hexdigest() == want


def test_it_uploads_a_large_body_intact(server, target, tls_target, ca_bundle):
    body = os.urandom(32 * 1024 * 1024)
    for url, verify in ((target.url, True), (tls_target.url, ca_bundle)):
        response = requests.post(
            f"{url}/upload", data=body, proxies=proxies(server), verify=verify, timeout=60
        )
        assert response.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_it_streams_a_chunked_upload(server, target):
    chunks = [os.urandom(100_000) for _ in range(20)]
    response = requests.post(
        f"{target.url}/upload", data=iter(chunks), proxies=proxies(server), timeout=30
    )
    body = b"".join(chunks)
    assert response.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_it_serves_many_requests_on_one_keep_alive_connection(server, target):
    with requests.Session() as session:
        session.proxies = proxies(server)
        for n in (10, 1000, 100_000, 5):
            response = session.get(f"{target.url}/bytes/{n}", timeout=10)
            assert response.content == expected_bytes(n)
        assert session.get(f"{target.url}/bytes/3?chunked=1", timeout=10).content == (
            expected_bytes(3)
        )


def test_it_answers_407_without_or_with_wrong_credentials(server, target):
    bare = {"http": f"http://127.0.0.1:{server.proxy_port}"}
    response = requests.get(f"{target.url}/ip", proxies=bare, timeout=10)
    assert response.status_code == 407
    assert response.headers["Proxy-Authenticate"].startswith("Basic")
    wrong = requests.get(f"{target.url}/ip", proxies=proxies(server, USER, "nope"), timeout=10)
    assert wrong.status_code == 407
    assert wrong.headers["X-Exitpool-Error"] == "auth-failed"


def test_it_answers_502_with_the_reason_when_the_target_refuses(server):
    closed_port = free_port("127.0.0.3")
    response = requests.get(f"http://127.0.0.3:{closed_port}/", proxies=proxies(server), timeout=10)
    assert response.status_code == 502
    assert response.headers["X-Exitpool-Error"] == "target-refused"
    assert "connection refused" in response.text


def test_it_answers_502_for_a_connect_to_a_refusing_target(server):
    closed_port = free_port("127.0.0.3")
    with pytest.raises(requests.exceptions.ProxyError, match="502"):
        requests.get(f"https://127.0.0.3:{closed_port}/", proxies=proxies(server), timeout=10)


@pytest.mark.parametrize("url", ["http://[::1]:9/", "http://127.0.0.3:25/"])
def test_it_answers_403_when_the_agent_owner_forbids_the_destination(server, url):
    response = requests.get(url, proxies=proxies(server), timeout=10)
    assert response.status_code == 403
    assert response.headers["X-Exitpool-Error"] == "forbidden"
    assert "forbidden" in response.text


def test_it_answers_504_when_the_target_does_not_accept_in_time(server):
    # A listener that is never accepted from, with its queue full: further SYNs are dropped.
    listener = socket.socket()
    listener.bind(("127.0.0.3", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue until a connect stalls
            filler = socket.socket()
            filler.settimeout(0.5)
            fillers.append(filler)
            try:
                filler.connect(listener.getsockname())
            except TimeoutError:
                break
        port = listener.getsockname()[1]
        response = requests.get(f"http://127.0.0.3:{port}/", proxies=proxies(server), timeout=20)
        assert response.status_code == 504
        assert response.headers["X-Exitpool-Error"] == "target-timeout"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_it_answers_400_to_garbage_and_to_origin_form_requests(server):
    for payload in (b"\x16\x03\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.proxy_port), timeout=5) as sock:
            sock.sendall(payload)
            answer = sock.recv(4096)
            assert answer.split(b"\r\n")[0] in (
                b"HTTP/1.1 400 Bad Request",
                b"HTTP/1.1 407 Proxy Authentication Required",
            )


def test_it_answers_503_when_no_agent_is_online(tmp_path, target):
    lonely = ServerProcess(tmp_path)
    lonely.cli("proxyuser", USER, "--password", PASSWORD)
    lonely.start()
    try:
        response = requests.get(f"{target.url}/ip", proxies=proxies(lonely), timeout=10)
        assert response.status_code == 503
        assert response.headers["X-Exitpool-Error"] == "no-agent"
    finally:
        lonely.terminate()


def test_it_keeps_the_exit_ip_the_agent_connected_from(server, agent_a: AgentProcess):
    assert "exit IP seen by the server: 127.0.0.2" in agent_a.log()


def test_it_answers_a_client_that_half_closes_after_its_request(server, target):
    auth = requests.auth._basic_auth_str(USER, PASSWORD)
    with socket.create_connection(("127.0.0.1", server.proxy_port), timeout=10) as sock:
        sock.sendall(
            f"GET {target.url}/bytes/5000 HTTP/1.1\r\nHost: 127.0.0.3\r\n"
            f"Proxy-Authorization: {auth}\r\n\r\n".encode()
        )
        sock.shutdown(socket.SHUT_WR)  # like `nc -N`: no more requests
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == expected_bytes(5000)


def raw_exchange(server, payload: bytes) -> bytes:
    """Send raw bytes to the proxy port; everything it answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.proxy_port), timeout=10) as sock:
        sock.sendall(payload)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def test_it_answers_431_to_a_request_head_over_the_limit(server, target):
    huge = b"X-Big: " + b"a" * (70 * 1024) + b"\r\n"
    for trickle in (False, True):
        with socket.create_connection(("127.0.0.1", server.proxy_port), timeout=10) as sock:
            sock.sendall(f"GET {target.url}/ HTTP/1.1\r\n".encode())
            if trickle:
                for start in range(0, len(huge), 8192):
                    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                        sock.sendall(huge[start : start + 8192])
            else:
                sock.sendall(huge + b"\r\n")
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:80]


def test_it_cuts_a_client_that_never_finishes_its_head(server, target):
    started = time.monotonic()
    answer = raw_exchange(server, f"GET {target.url}/ HTTP/1.1\r\nX-Slow: ".encode())
    assert answer.startswith(b"HTTP/1.1 408")
    assert HEADER_TIMEOUT <= time.monotonic() - started < HEADER_TIMEOUT + 3


def test_it_answers_504_when_the_target_accepts_but_never_answers(server, target):
    started = time.monotonic()
    response = requests.get(f"{target.url}/hang", proxies=proxies(server), timeout=20)
    assert response.status_code == 504
    assert response.headers["X-Exitpool-Error"] == "target-timeout"
    assert RESPONSE_TIMEOUT <= time.monotonic() - started < RESPONSE_TIMEOUT + 3

"""Hostile proxy users: slowloris, garbage, forbidden CONNECT ports, a flood of connections.

(Request heads over 64 KiB → 431 and a head left unfinished → 408 are
``test_it_answers_431_to_a_request_head_over_the_limit`` and
``test_it_cuts_a_client_that_never_finishes_its_head`` in tests/integration/test_proxy.py;
see tests/faults/README.md.)

This module's server runs with an open-file limit of 1024, the common default of a small
host, so the flood below is 2,000 connections against a process that could not even hold them.
"""

from __future__ import annotations

import re
import selectors
import socket
import time
from collections import Counter
from collections.abc import Callable

import pytest
import requests

from tests.faults.conftest import HEADER_TIMEOUT, PASSWORD, USER, proxies
from tests.support.memory import RssSampler, rss_bytes
from tests.support.processes import AgentProcess, ServerProcess, wait_for
from tests.support.raw_proxy import basic_auth, connect, exchange, header_of, status_of
from tests.support.target import TargetProcess

AUTH = basic_auth(USER, PASSWORD)
OPEN_FILES = 1024
FLOOD = 2000
FLOOD_RSS_SLACK = 32 * 1024 * 1024
"""How much the server may grow while it answers the flood (2,000 connections, 1 KB each
would be 2 MB; a server that buffered or leaked per connection would blow far past this)."""


@pytest.fixture(scope="module")
def server_open_files() -> int:
    return OPEN_FILES


@pytest.fixture(scope="module", autouse=True)
def agent(start_agent: Callable[[str, str], AgentProcess]) -> AgentProcess:
    return start_agent("pc-users", "127.0.0.2")


def test_a_slowloris_trickling_its_head_is_cut_at_the_deadline(
    server: ServerProcess, target: TargetProcess
) -> None:
    """Bytes that keep coming do not extend the deadline: the whole head must arrive within
    ``header_timeout`` of connecting, else 408 and the connection is closed."""
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(f"GET {target.url}/ HTTP/1.1\r\nX-Slow: ".encode())
        answer = b""
        for _ in range(int((HEADER_TIMEOUT + 5) / 0.2)):  # one byte every 0.2 s, bounded
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.2)
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            break
    elapsed = time.monotonic() - started
    assert status_of(answer) == 408, answer[:200]
    assert header_of(answer, "X-Exitpool-Error") == "header-timeout"
    assert HEADER_TIMEOUT <= elapsed < HEADER_TIMEOUT + 3


GARBAGE = {
    "TLS ClientHello": bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\r\n\r\n",
    "SSH banner": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "binary": bytes(range(256)) + b"\r\n\r\n",
    "no method": b" / HTTP/1.1\r\n\r\n",
    "bad version": b"GET http://127.0.0.3/ HTTP/9.9\r\n\r\n",
    "header without colon": b"GET http://127.0.0.3/ HTTP/1.1\r\nno colon here\r\n\r\n",
    "NUL in the URL": b"GET http://127.0.0.3/\x00 HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("payload", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_instead_of_http_gets_a_400_and_a_closed_connection(
    server: ServerProcess, payload: bytes
) -> None:
    answer, ended = exchange(server, payload)
    assert status_of(answer) == 400, answer[:200]
    assert header_of(answer, "X-Exitpool-Error") == "bad-request"
    assert ended == "eof"


@pytest.mark.parametrize(
    ("port", "status", "code"),
    [
        (25, 403, "forbidden"),
        (465, 403, "forbidden"),
        (587, 403, "forbidden"),
        ("0", 400, "bad-request"),
        ("65536", 400, "bad-request"),
        ("http", 400, "bad-request"),
    ],
)
def test_a_connect_to_a_port_outside_the_allowed_set_is_refused(
    server: ServerProcess, port: int | str, status: int, code: str
) -> None:
    """Mail ports are refused by the agent's guard (403); impossible ports by the server."""
    answer, ended = exchange(
        server, f"CONNECT 127.0.0.3:{port} HTTP/1.1\r\nProxy-Authorization: {AUTH}\r\n\r\n".encode()
    )
    assert status_of(answer) == status, answer[:200]
    assert header_of(answer, "X-Exitpool-Error") == code
    assert ended == "eof"


def open_flood(server: ServerProcess, count: int) -> list[socket.socket]:
    """``count`` connections to the proxy port, each starting a request it never finishes.

    Each sends one byte: a connection the kernel completed with a SYN cookie while the accept
    queue was full exists only on the client's side until the client sends something.
    """
    flood = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", server.proxy_port))
        flood.append(sock)
    return flood


def answers(flood: list[socket.socket], timeout: float) -> Counter[int | str]:
    """Each connection's status code (or "reset", "eof", "silent"), within ``timeout``."""
    outcome: Counter[int | str] = Counter()
    with selectors.DefaultSelector() as selector:
        for each in flood:
            selector.register(each, selectors.EVENT_WRITE)
        deadline = time.monotonic() + timeout
        pending = len(flood)
        while pending and time.monotonic() < deadline:
            for key, events in selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)  # for mypy: we registered sockets
                try:
                    if events & selectors.EVENT_WRITE:
                        sock.send(b"G")
                        selector.modify(sock, selectors.EVENT_READ)
                        continue
                    data = sock.recv(4096)
                    outcome[status_of(data) or "eof"] += 1
                except (ConnectionResetError, BrokenPipeError):
                    outcome["reset"] += 1
                except BlockingIOError:
                    continue
                selector.unregister(sock)
                pending -= 1
        outcome["silent"] += pending
    return outcome


def test_a_flood_of_connections_is_refused_beyond_the_limit_and_service_comes_back(
    server: ServerProcess, target: TargetProcess, agent: AgentProcess
) -> None:
    """2,000 connections that start a request and never finish it, at a server whose process
    may open only 1,024 files.

    Expected: the server holds at most its connection cap (half its open files) and answers
    any connection beyond it at once with 503 ``too-many-connections``; those it holds are cut
    with 408 at the head deadline; the rest wait in the kernel's queue. Nothing raises (no
    "out of system resource" from accept), memory stays within a constant, the agent stays
    online, the web side answers during the flood, and the proxy serves again right after.
    """
    cap_line = re.search(r"at most (\d+) proxy connections", server.log())
    assert cap_line, "the server did not say how it capped proxy connections"
    cap = int(cap_line.group(1))
    assert cap <= OPEN_FILES // 2
    assert server.proc is not None
    baseline = rss_bytes(server.proc.pid)
    with RssSampler([server.proc.pid]) as sampler:
        flood = open_flood(server, FLOOD)
        try:
            web = requests.get(f"{server.http_url}/admin/login/", timeout=10)
            assert web.status_code == 200
            outcome = answers(flood, HEADER_TIMEOUT + 5)
        finally:
            for sock in flood:
                sock.close()
    assert set(outcome) <= {503, 408, "silent"}, outcome  # silent: still in the kernel's queue
    assert outcome[503] and outcome[503] + outcome[408] > cap, outcome
    growth = sampler.peak[server.proc.pid] - baseline
    assert growth < FLOOD_RSS_SLACK, f"server grew {growth / 2**20:.1f} MiB"

    def served() -> str | None:
        response = requests.get(f"{target.url}/ip", proxies=proxies(server), timeout=10)
        return response.text if response.status_code == 200 else None

    assert wait_for(served, 10, "the proxy to serve again") == "127.0.0.2"
    assert "pc-users offline" not in server.log()
    assert agent.running and "out of system resource" not in server.log()

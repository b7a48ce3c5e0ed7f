"""Hostile destinations on loopback: targets that reset or half-close.

(A target that accepts and never answers is ``test_it_answers_504_when_the_target_accepts_
but_never_answers`` in tests/integration/test_proxy.py; see tests/faults/README.md.)
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from tests.faults.conftest import PASSWORD, USER
from tests.support.processes import AgentProcess, ServerProcess
from tests.support.raw_proxy import basic_auth, connect, exchange, header_of, read_to_end, status_of
from tests.support.target import TargetProcess

AUTH = basic_auth(USER, PASSWORD)
# The reset lands during the agent's connect or just after it: each is a 502 (README).
BAD_GATEWAY_CODES = ("target-refused", "target-unreachable", "agent-lost")


@pytest.fixture(scope="module", autouse=True)
def agent(start_agent: Callable[[str, str], AgentProcess]) -> AgentProcess:
    return start_agent("pc-targets", "127.0.0.2")


@pytest.fixture(scope="module")
def resetting() -> Iterator[TargetProcess]:
    with TargetProcess(host="127.0.0.3", mode="reset") as process:
        yield process


@pytest.fixture(scope="module")
def half_closing() -> Iterator[TargetProcess]:
    with TargetProcess(host="127.0.0.3", mode="half-close") as process:
        yield process


def test_a_target_that_resets_gets_the_user_a_502(
    server: ServerProcess, resetting: TargetProcess
) -> None:
    """The agent connects, the target answers with RST: the user gets a 502, not a hang."""
    for _ in range(3):  # the reset races the request on its way in; every ordering is a 502
        answer, ended = exchange(
            server,
            f"GET {resetting.url}/ HTTP/1.1\r\nHost: {resetting.host}\r\n"
            f"Proxy-Authorization: {AUTH}\r\n\r\n".encode(),
        )
        assert status_of(answer) == 502, answer[:200]
        assert header_of(answer, "X-Exitpool-Error") in BAD_GATEWAY_CODES
        assert ended == "eof"


def test_a_tunnel_to_a_target_that_resets_ends_in_a_reset(
    server: ServerProcess, resetting: TargetProcess
) -> None:
    """Once a CONNECT is established, a reset target can only be told by a reset connection."""
    with connect(server) as sock:
        sock.sendall(
            f"CONNECT {resetting.host}:{resetting.port} HTTP/1.1\r\n"
            f"Proxy-Authorization: {AUTH}\r\n\r\n".encode()
        )
        answer, ended = read_to_end(sock, timeout=10)
    if status_of(answer) == 200:  # the agent connected before the target reset
        assert answer == b"HTTP/1.1 200 Connection established\r\n\r\n"
        assert ended == "reset"
    else:  # the reset came while the agent was still connecting: refused outright
        assert status_of(answer) == 502, answer[:200]


def test_a_half_close_reaches_the_target_and_its_answer_still_arrives(
    server: ServerProcess, half_closing: TargetProcess
) -> None:
    """The user half-closes a tunnel: the FIN goes through the agent to the target, which
    only answers once it sees end-of-file; the answer comes back, then a clean close."""
    body = b"x" * 300_000
    with connect(server) as sock:
        sock.sendall(
            f"CONNECT {half_closing.host}:{half_closing.port} HTTP/1.1\r\n"
            f"Proxy-Authorization: {AUTH}\r\n\r\n".encode()
        )
        assert sock.recv(4096) == b"HTTP/1.1 200 Connection established\r\n\r\n"
        sock.sendall(body)
        sock.shutdown(socket.SHUT_WR)
        answer, ended = read_to_end(sock, timeout=10)
    assert answer == f"got {len(body)} bytes\n".encode()
    assert ended == "eof"

"""Hostile destinations on loopback: targets that reset or half-close.

A target that talks or resets the moment it accepts puts its first bytes or its RESET in
the same agent message as the OPEN_OK, before the server's opener has attached the user's
link; they must still reach the user (checked in-process too, where the race is certain).

(A target that accepts and never answers is ``test_it_answers_504_when_the_target_accepts_
but_never_answers`` in tests/integration/test_proxy.py; see tests/faults/README.md.)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import pytest

import wire
from tests.faults.conftest import PASSWORD, USER
from tests.support.processes import AgentProcess, ServerProcess
from tests.support.raw_proxy import basic_auth, connect, exchange, header_of, read_to_end, status_of
from tests.support.target import TargetProcess
from tunnel import Mux

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


class Recorder:
    """A stream handler that writes down what the mux hands it."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def on_data(self, data: bytes | memoryview) -> None:
        self.events.append(("data", bytes(data)))

    def on_credit(self) -> None:
        pass

    def on_end(self) -> None:
        self.events.append(("end",))

    def on_reset(self, reason: wire.Reason, message: str) -> None:
        self.events.append(("reset", reason))


async def test_what_a_target_sends_with_the_open_ok_reaches_the_link_attached_after() -> None:
    """The agent accepts, relays the target's greeting and its reset, all in one message;
    the server's opener attaches its handler only after ``open`` returns."""
    sent: list[bytes | str] = []

    async def send(message: bytes | str) -> None:
        sent.append(message)

    mux = Mux(wire.Connection(wire.Role.SERVER), send)
    opening = asyncio.create_task(mux.open("target.test", 25, 5))
    agent = wire.Connection(wire.Role.AGENT)
    for _ in range(10):  # bounded: the OPEN goes out within an iteration or two
        await asyncio.sleep(0)
        if sent:
            break
    for message in sent:
        assert isinstance(message, bytes)
        agent.receive_bytes(message)
    [request] = agent.events_received()
    assert isinstance(request, wire.StreamOpenRequested)
    agent.accept_stream(request.stream_id, "192.0.2.1:25")
    agent.send_data(request.stream_id, b"220 hello\r\n")
    agent.reset_stream(request.stream_id, wire.Reason.CONNECTION_LOST, "reset by peer")
    [together] = agent.data_to_send()
    assert isinstance(together, bytes)
    mux.feed_bytes(together)

    sid, answer = await opening
    assert isinstance(answer, wire.StreamAccepted)
    link = Recorder()
    mux.attach(sid, link)
    assert link.events == [("data", b"220 hello\r\n"), ("reset", wire.Reason.CONNECTION_LOST)]

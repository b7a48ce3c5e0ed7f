"""The ``--http`` port sorts connections by their request line without reading it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from server import http_port
from server.http_port import HttpPort, is_agent_request


@pytest.mark.parametrize(
    ("head", "verdict"),
    [
        (b"GET /ws/agent HTTP/1.1\r\nHost: x\r\n", True),
        (b"GET /ws/agent/ HTTP/1.1\r\n", True),
        (b"GET /ws/agent?x=1 HTTP/1.1\r\n", True),
        (b"GET /ws/agentx HTTP/1.1\r\n", False),
        (b"GET /ws/agent/more HTTP/1.1\r\n", False),
        (b"GET /admin/ HTTP/1.1\r\n", False),
        (b"POST /ws/agent HTTP/1.1\r\n", False),
        (b"GET /ws/agent HTTP/1.1", None),  # the line is not complete yet
        (b"GET /ws", None),
        (b"G", None),
        (b"POST", False),  # cannot become an agent's request
        (b"\x16\x03\x01", False),  # TLS to a plain port
        (b"GET /ws/agent?" + b"x" * http_port.PEEK_BYTES, False),  # no line end in the bound
    ],
)
def test_it_tells_an_agents_request_line_from_anything_else(
    head: bytes, verdict: bool | None
) -> None:
    assert is_agent_request(head) is verdict


class Port:
    """A running :class:`HttpPort` whose two destinations record the sockets they get."""

    def __init__(self) -> None:
        self.agents: asyncio.Queue[bytes] = asyncio.Queue()
        self.adopted: asyncio.Queue[bytes] = asyncio.Queue()
        self.port = HttpPort("127.0.0.1", 0, self._take(self.agents), self._take(self.adopted))

    @staticmethod
    def _take(queue: asyncio.Queue[bytes]) -> Callable[[socket.socket], None]:
        def take(sock: socket.socket) -> None:
            sock.settimeout(5)
            queue.put_nowait(sock.recv(65536))  # what was peeked is still there to read
            sock.close()

        return take

    async def send(self, *parts: bytes, pause: float = 0.05) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port.port))
        for part in parts:
            sock.sendall(part)
            await asyncio.sleep(pause)
        return sock


@pytest.fixture
async def port() -> AsyncIterator[Port]:
    running = Port()
    running.port.start()
    yield running
    running.port.close()


@pytest.mark.parametrize(
    ("request_head", "goes_to", "not_to"),
    [
        (b"GET /ws/agent HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "agents", "adopted"),
        (b"GET /admin/ HTTP/1.1\r\nHost: x\r\n\r\n", "adopted", "agents"),  # to daphne
    ],
)
async def test_each_request_goes_where_it_belongs_unread(
    port: Port, request_head: bytes, goes_to: str, not_to: str
) -> None:
    client = await port.send(request_head)
    assert await asyncio.wait_for(getattr(port, goes_to).get(), 5) == request_head
    assert getattr(port, not_to).empty()
    client.close()


async def test_a_request_line_sent_in_pieces_is_sorted_when_it_is_complete(port: Port) -> None:
    client = await port.send(b"GET /ws/ag", b"ent HTTP/1.1\r\n\r\n")
    assert await asyncio.wait_for(port.agents.get(), 5) == b"GET /ws/agent HTTP/1.1\r\n\r\n"
    client.close()


async def test_a_connection_silent_past_the_deadline_goes_to_daphne_as_it_is(
    port: Port, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_port, "PEEK_TIMEOUT", 0.2)
    client = await port.send(b"GET /ws/a", pause=0.0)
    assert await asyncio.wait_for(port.adopted.get(), 5) == b"GET /ws/a"
    client.close()


async def test_out_of_descriptors_it_rests_instead_of_failing_every_turn_then_serves(
    port: Port, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(http_port, "ACCEPT_RETRY_DELAY", 0.3)
    request = b"GET /admin/ HTTP/1.1\r\nHost: x\r\n\r\n"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    filler: list[int] = []
    client = None
    try:  # every descriptor taken, for real: the next accept() fails with EMFILE
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 4096), hard))
        client = await port.send(request, pause=0.0)
        with contextlib.suppress(OSError):
            while True:
                filler.append(os.open(os.devnull, os.O_RDONLY))
        await asyncio.sleep(1.0)
        failures = caplog.text.count("accept on the http port failed")
        assert 1 <= failures <= 4  # about one per rest, not one per loop turn
        assert "pausing" in caplog.text
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert await asyncio.wait_for(port.adopted.get(), 5) == request
    assert client is not None
    client.close()

"""Nagle is off on every TCP socket a tunnel relays on, on both event loops we run on.

The links do not set ``TCP_NODELAY`` themselves (a system call per tunnel):
they rely on asyncio and uvloop turning it off on the transports they accept
and connect, and on :func:`~desktop_agent.engine.relay.connect_from` for the
agent's source-bound socket. If a loop ever stops doing so, tunnels get
Nagle's 40 ms stalls back and these tests fail.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from desktop_agent.engine.relay import connect_from

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif("sys.platform == 'win32'"))]


def run_on(loop_name: str, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop_name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(scenario())
    else:
        asyncio.run(scenario())


def nodelay(transport: asyncio.BaseTransport) -> int:
    sock = transport.get_extra_info("socket")
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class Seen(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_gateways_accepted_and_the_agents_connected_sockets_have_nagle_off(
    loop_name: str,
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        accepted: list[Seen] = []

        def protocol() -> Seen:
            accepted.append(Seen())
            return accepted[-1]

        server = await loop.create_server(protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connected, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        await asyncio.sleep(0.05)
        assert nodelay(connected) == 1  # an agent's target connection, no source address
        assert accepted[0].transport is not None
        assert nodelay(accepted[0].transport) == 1  # a proxy user's connection
        connected.close()
        server.close()

    run_on(loop_name, scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_agents_source_bound_socket_has_nagle_off(loop_name: str) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = await connect_from(("127.0.0.2", 0), "127.0.0.1", port)
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=sock)
        assert sock.getsockname()[0] == "127.0.0.2"
        assert nodelay(transport) == 1
        transport.close()
        server.close()

    run_on(loop_name, scenario)

"""``/ws/agent`` served by our own asyncio code: handshake, checks, LIMITS, close codes, heartbeat.

Each test serves :class:`AgentSocket` on a loopback port and talks to it as a
client of the real WebSocket protocol (websockets' client, or raw bytes where a
client must misbehave), against the test database.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import wire
from server.config import ServerConfig
from server.hub import Hub

if TYPE_CHECKING:
    from server.agent_endpoint import AgentEndpoint

_names = itertools.count(1)

Serve = Callable[..., Awaitable[tuple["AgentEndpoint", str]]]


def enroll() -> tuple[str, str]:
    """A fresh enrollment key and the credential of an agent enrolled with it."""
    from server.fleet.models import Agent, EnrollmentKey

    key, raw_key = EnrollmentKey.issue("endpoint tests")
    _, credential = Agent.enroll(key, f"endpoint-pc{next(_names)}", {})
    return raw_key, credential


def agents() -> int:
    from server.fleet.models import Agent

    return Agent.objects.count()


@pytest.fixture
async def serve(django_db: None) -> AsyncIterator[Serve]:
    """Serve agent sockets with the given settings; returns the endpoint and the URL."""
    from server.agent_endpoint import AgentEndpoint  # needs Django set up
    from server.agent_socket import AgentSocket

    servers: list[asyncio.Server] = []

    async def start(**settings: Any) -> tuple[AgentEndpoint, str]:
        endpoint = AgentEndpoint(Hub(), ServerConfig(**settings))
        server = await asyncio.get_running_loop().create_server(
            lambda: AgentSocket(endpoint, ()), "127.0.0.1", 0
        )
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return endpoint, f"ws://127.0.0.1:{port}/ws/agent"

    yield start
    for server in servers:
        server.close()


async def online(endpoint: AgentEndpoint, count: int = 1) -> None:
    async with asyncio.timeout(5):
        while len(endpoint.hub.sessions) != count:
            await asyncio.sleep(0.01)


async def hello(ws: ClientConnection, **extra: Any) -> dict[str, Any]:
    """Say HELLO; returns the WELCOME."""
    await ws.send(wire.encode_control({"type": "hello", "version": 1, "name": "x", **extra}))
    async with asyncio.timeout(5):
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                conn = wire.Connection(wire.Role.AGENT, wire.Limits())
                conn.receive_bytes(message)
                for event in conn.events_received():
                    if isinstance(event, wire.ControlReceived):
                        return event.message
            else:
                return wire.decode_control(message)


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(5):
            while True:
                await ws.recv()
    assert ws.close_code is not None or ws.close_reason is None
    return ws.close_code, ws.close_reason


@pytest.mark.parametrize("kind", ["key", "credential"])
async def test_a_check_is_accepted_and_closed_at_once_without_enrolling(
    serve: Serve, kind: str
) -> None:
    endpoint, url = await serve()
    raw_key, credential = await sync_to_async(enroll)()
    before = await sync_to_async(agents)()
    header = (
        {"X-Exitpool-Enrollment-Key": raw_key}
        if kind == "key"
        else {"Authorization": f"Bearer {credential}"}
    )

    async with connect(url, additional_headers={**header, "X-Exitpool-Check": "1"}) as ws:
        assert await closed_with(ws) == (1000, "check ok")  # no HELLO was waited for

    assert await sync_to_async(agents)() == before
    assert endpoint.hub.sessions == {}


@pytest.mark.parametrize(
    "header",
    [
        {"X-Exitpool-Enrollment-Key": "epk_not-a-real-key"},
        {"Authorization": "Bearer epa_not-a-real-credential"},
        {},
    ],
)
async def test_a_wrong_key_or_credential_is_refused_at_the_handshake_with_403(
    serve: Serve, header: dict[str, str]
) -> None:
    _, url = await serve()

    with pytest.raises(InvalidStatus) as refused:
        await connect(url, additional_headers={**header, "X-Exitpool-Check": "1"})

    assert refused.value.response.status_code == 403


async def test_an_agent_is_welcomed_with_its_limits_and_its_exit_ip(serve: Serve) -> None:
    endpoint, url = await serve()
    raw_key, _ = await sync_to_async(enroll)()

    async with connect(url, additional_headers={"X-Exitpool-Enrollment-Key": raw_key}) as ws:
        welcome = await hello(ws, max_streams=7)
        await online(endpoint)

    assert welcome["type"] == "welcome"
    assert welcome["exit_ip"] == "127.0.0.1"
    assert welcome["limits"]["max_streams"] == 7
    assert welcome["credential"].startswith("epa_")  # enrolled: its credential, once


async def test_limits_change_how_many_streams_the_hub_gives_an_agent(serve: Serve) -> None:
    endpoint, url = await serve()
    _, credential = await sync_to_async(enroll)()

    async def streams_becomes(value: int) -> None:
        async with asyncio.timeout(5):
            while [s.max_streams for s in endpoint.hub.sessions.values()] != [value]:
                await asyncio.sleep(0.01)

    async with connect(url, additional_headers={"Authorization": f"Bearer {credential}"}) as ws:
        await hello(ws, max_streams=10)
        await streams_becomes(10)
        await ws.send(wire.encode_control({"type": "limits", "max_streams": 3}))
        await streams_becomes(3)
        await ws.send(wire.encode_control({"type": "limits", "max_streams": 100_000}))
        await streams_becomes(ServerConfig().max_streams_per_agent)  # never beyond the server's
        await ws.send(wire.encode_control({"type": "limits", "max_streams": "many"}))
        await streams_becomes(ServerConfig().max_streams_per_agent)  # nonsense: the server's

    async with asyncio.timeout(5):
        while endpoint.hub.sessions:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1001, "server shutting down"), (4001, "credential revoked"), (4002, "replaced")],
)
async def test_the_server_closes_an_agent_with_the_code_it_chose(
    serve: Serve, code: int, reason: str
) -> None:
    endpoint, url = await serve()
    _, credential = await sync_to_async(enroll)()

    async with connect(url, additional_headers={"Authorization": f"Bearer {credential}"}) as ws:
        await hello(ws)
        await online(endpoint)
        await endpoint.hub.close_all(code, reason)
        assert await closed_with(ws) == (code, reason)

    await online(endpoint, 0)


async def test_a_broken_frame_closes_the_agent_with_1002_and_a_bad_hello_with_4003(
    serve: Serve,
) -> None:
    endpoint, url = await serve()
    _, credential = await sync_to_async(enroll)()
    headers = {"Authorization": f"Bearer {credential}"}

    async with connect(url, additional_headers=headers) as ws:
        await hello(ws)
        await online(endpoint)
        await ws.send(b"\xff" * 10)  # no frame of ours looks like this
        assert (await closed_with(ws))[0] == 1002
    await online(endpoint, 0)

    async with connect(url, additional_headers=headers) as ws:
        await ws.send(b"binary first")
        assert (await closed_with(ws))[0] == 4003


async def test_a_message_over_the_limit_closes_the_agent_with_1009(serve: Serve) -> None:
    endpoint, url = await serve(max_ws_message=64 * 1024, max_frame_payload=32 * 1024)
    _, credential = await sync_to_async(enroll)()

    async with connect(
        url, additional_headers={"Authorization": f"Bearer {credential}"}, max_size=None
    ) as ws:
        await hello(ws)
        await online(endpoint)
        await ws.send(b"\x00" * (64 * 1024 + 1))
        assert (await closed_with(ws))[0] == 1009
    await online(endpoint, 0)


async def test_an_agent_that_answers_no_ping_is_dropped_after_the_ping_timeout(
    serve: Serve,
) -> None:
    endpoint, url = await serve(ws_ping_interval=0.2, ws_ping_timeout=0.3)
    _, credential = await sync_to_async(enroll)()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws/agent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {credential}\r\n\r\n"
        ).encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    payload = wire.encode_control({"type": "hello", "version": 1, "name": "mute"}).encode()
    writer.write(struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload)
    await online(endpoint)
    started = asyncio.get_running_loop().time()

    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(5):  # it reads (pings arrive) but never answers one
            while await reader.read(65536):
                pass
    dropped_after = asyncio.get_running_loop().time() - started

    assert 0.4 <= dropped_after < 2.0  # first ping at 0.2 s, no pong by 0.5 s
    await online(endpoint, 0)
    writer.close()

"""``/ws/agent`` driven as the ASGI callable it is: connection checks and LIMITS.

Each test plays daphne: it feeds ASGI messages in through ``receive`` and
reads what the endpoint ``send``s, against the test database.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import sync_to_async

import wire
from server.config import ServerConfig
from server.hub import Hub

if TYPE_CHECKING:
    from server.agent_endpoint import AgentEndpoint

_names = itertools.count(1)


class Socket:
    """One WebSocket as daphne hands it to the endpoint."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.scope = {
            "type": "websocket",
            "client": ("198.51.100.20", 50000),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.sent: list[dict[str, Any]] = []
        self.reads = 0

    async def receive(self) -> dict[str, Any]:
        self.reads += 1
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def text(self, control: dict[str, Any]) -> None:
        self.incoming.put_nowait(
            {"type": "websocket.receive", "text": wire.encode_control(control)}
        )


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
async def endpoint(django_db: None) -> AgentEndpoint:
    from server.agent_endpoint import AgentEndpoint  # needs Django set up

    return AgentEndpoint(Hub(), ServerConfig())


@pytest.mark.parametrize("kind", ["key", "credential"])
async def test_a_check_is_accepted_and_closed_at_once_without_enrolling(
    endpoint: AgentEndpoint, kind: str
) -> None:
    raw_key, credential = await sync_to_async(enroll)()
    before = await sync_to_async(agents)()
    header = (
        {"X-Exitpool-Enrollment-Key": raw_key}
        if kind == "key"
        else {"Authorization": f"Bearer {credential}"}
    )
    socket = Socket({**header, "X-Exitpool-Check": "1"})

    await asyncio.wait_for(endpoint(socket.scope, socket.receive, socket.send), 5)

    assert socket.sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": 1000, "reason": "check ok"},
    ]
    assert socket.reads == 1  # only the connect: no HELLO was waited for
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
async def test_a_check_with_a_wrong_key_or_credential_is_refused_at_the_handshake(
    endpoint: AgentEndpoint, header: dict[str, str]
) -> None:
    socket = Socket({**header, "X-Exitpool-Check": "1"})

    await asyncio.wait_for(endpoint(socket.scope, socket.receive, socket.send), 5)

    assert socket.sent == [{"type": "websocket.close", "code": 4001}]  # daphne: HTTP 403


async def test_limits_change_how_many_streams_the_hub_gives_an_agent(
    endpoint: AgentEndpoint,
) -> None:
    _, credential = await sync_to_async(enroll)()
    socket = Socket({"Authorization": f"Bearer {credential}"})
    socket.text({"type": "hello", "version": 1, "name": "x", "max_streams": 10})
    serving = asyncio.create_task(endpoint(socket.scope, socket.receive, socket.send))

    async def streams_becomes(value: int) -> None:
        async with asyncio.timeout(5):
            while not endpoint.hub.sessions or [
                s.max_streams for s in endpoint.hub.sessions.values()
            ] != [value]:
                await asyncio.sleep(0.01)

    await streams_becomes(10)
    socket.text({"type": "limits", "max_streams": 3})
    await streams_becomes(3)
    socket.text({"type": "limits", "max_streams": 100_000})  # never beyond the server's own
    await streams_becomes(ServerConfig().max_streams_per_agent)
    socket.text({"type": "limits", "max_streams": "many"})  # nonsense: the server's own limit
    await streams_becomes(ServerConfig().max_streams_per_agent)

    socket.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(serving, 5)
    assert endpoint.hub.sessions == {}

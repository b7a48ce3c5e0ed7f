"""The server's in-memory state built in a test process, for unit tests of code that reads it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import wire
from server.config import ServerConfig
from tunnel import Mux

if TYPE_CHECKING:
    from server.hub import AgentSession
    from server.live import Live


class Outbox:
    """What a session's mux sent and how its WebSocket was closed."""

    def __init__(self) -> None:
        self.messages: list[bytes | str] = []
        self.closes: list[tuple[int, str]] = []

    async def send(self, message: bytes | str) -> None:
        self.messages.append(message)

    async def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))


def agent_session(
    agent_id: int, name: str, exit_ip: str, outbox: Outbox | None = None, **fields: Any
) -> AgentSession:
    """An agent's session as the agent endpoint registers it; its mux writes into ``outbox``.

    ``fields`` are further :class:`AgentSession` fields (``max_streams`` is 8 unless given).
    """
    from server.hub import AgentSession

    outbox = outbox or Outbox()
    return AgentSession(
        agent_id=agent_id,
        name=name,
        exit_ip=exit_ip,
        mux=Mux(wire.Connection(wire.Role.SERVER), outbox.send),
        close=outbox.close,
        **{"max_streams": 8, **fields},
    )


@contextlib.asynccontextmanager
async def installed_live(config: ServerConfig) -> AsyncIterator[Live]:
    """A hub, accounting and gateway installed as ``exitpool-server run`` does (Django set up)."""
    from server import live
    from server.accounting import Accounting
    from server.gateway import Gateway
    from server.hub import Hub

    hub = Hub()
    accounting = Accounting(config)
    state = live.Live(
        config, hub, accounting, Gateway(hub, config, accounting), asyncio.get_running_loop()
    )
    live.install(state)
    try:
        yield state
    finally:
        live.install(None)

"""The running server's in-memory state, reachable from Django code.

Admin actions, the dashboard, the API and ``/metrics`` run in the same
process as the hub and the gateway (DESIGN.md, principle 4), but sync Django
views run in worker threads, not on the event loop. :func:`current` gives them
the :class:`Live` object and :meth:`Live.call` runs a function on the loop and
waits for its answer, so an admin's pause reaches the agent in milliseconds.

Outside ``exitpool-server run`` (management commands, Django's test client)
there is no live state: :func:`current` returns None and callers fall back to
the database alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from asgiref.sync import sync_to_async

from server.accounting import Accounting
from server.config import ServerConfig
from server.hub import AgentSession, Hub
from wire import CloseCode

if TYPE_CHECKING:
    from server.gateway import Gateway

log = logging.getLogger(__name__)

T = TypeVar("T")

CALL_TIMEOUT = 5.0
"""Seconds a Django thread waits for the event loop to run a live call."""


class Live:
    """The hub, gateway and accounting of this process, and the loop they run on."""

    def __init__(
        self,
        config: ServerConfig,
        hub: Hub,
        accounting: Accounting,
        gateway: Gateway,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.config = config
        self.hub = hub
        self.accounting = accounting
        self.gateway = gateway
        self.loop = loop
        self._loop_thread = threading.get_ident()

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the event loop and return its result (from any thread)."""
        if threading.get_ident() == self._loop_thread:
            return function()

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(CALL_TIMEOUT)

    # ------------------------------------------- agent controls (on the loop)

    def set_admin_paused(self, agent_id: int, paused: bool) -> bool:
        """Pause or resume an online agent; False if it is not online."""
        session = self.hub.sessions.get(agent_id)
        if session is None:
            return False
        session.set_admin_paused(paused)
        log.info("agent %s %s by an admin", session.name, "paused" if paused else "resumed")
        return True

    def disconnect(self, agent_id: int, code: int, reason: str) -> bool:
        """Close an online agent's WebSocket; False if it is not online."""
        session = self.hub.sessions.get(agent_id)
        if session is None:
            return False
        log.info("agent %s disconnected: %s", session.name, reason)
        _keep(self.loop.create_task(_close(session, code, reason)))
        return True

    def forget_user(self, user_id: int) -> None:
        """A proxy user changed: check their password and limits again on the next request."""
        self.gateway.auth.forget(user_id)

    # -------------------------------------------------------- housekeeping

    async def run(self) -> None:
        """Tick the accounting every second; flush and re-read agent controls periodically."""
        next_flush = self.loop.time() + self.config.flush_interval
        try:
            while True:
                await asyncio.sleep(1.0)
                self.accounting.tick()
                if self.loop.time() >= next_flush:
                    next_flush = self.loop.time() + self.config.flush_interval
                    await self.accounting.flush()
                    await self.apply_database_controls()
        finally:
            await asyncio.shield(self.accounting.final_flush())

    async def apply_database_controls(self) -> None:
        """Act on revocations and pauses written by other processes (e.g. ``revokeagent``)."""
        online = {agent_id: s.admin_paused for agent_id, s in self.hub.sessions.items()}
        if not online:
            return
        try:
            states = await sync_to_async(_agent_states, thread_sensitive=False)(list(online))
        except Exception:
            log.exception("could not read agent states")
            return
        for agent_id, (revoked, paused) in states.items():
            if revoked:
                self.disconnect(agent_id, CloseCode.UNAUTHORIZED, "this agent was revoked")
            elif paused != online.get(agent_id, paused):
                self.set_admin_paused(agent_id, paused)


def _agent_states(agent_ids: list[int]) -> dict[int, tuple[bool, bool]]:
    from server.fleet.models import Agent

    rows = Agent.objects.filter(pk__in=agent_ids).values_list("pk", "revoked_at", "paused_by_admin")
    states = {pk: (revoked is not None, paused) for pk, revoked, paused in rows}
    for agent_id in agent_ids:
        states.setdefault(agent_id, (True, False))  # deleted: as good as revoked
    return states


async def _close(session: AgentSession, code: int, reason: str) -> None:
    await session.close(code, reason)


_tasks: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


_current: Live | None = None


def install(live: Live | None) -> None:
    global _current
    _current = live


def current() -> Live | None:
    """The live state of ``exitpool-server run`` in this process, if it is running."""
    return _current


def config() -> ServerConfig:
    """The running server's settings; outside ``exitpool-server run`` (management commands,
    Django's test client) the environment's."""
    return _current.config if _current is not None else ServerConfig.from_env()

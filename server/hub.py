"""Who is online, and which agent carries the next stream.

The hub is plain in-memory state on the server's one event loop: no locks, no
database on the hot path. Agent endpoints register and unregister sessions;
the gateway asks :meth:`Hub.choose` for an agent.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from server.routing import Route
from tunnel import Mux


@dataclass(eq=False)
class AgentSession:
    """One connected agent: its multiplexer, what routing needs, and what admins see."""

    agent_id: int
    name: str
    exit_ip: str
    mux: Mux
    close: Callable[[int, str], Awaitable[None]]
    """Close the WebSocket with a code and a reason (for shutdown, duplicates, revocation)."""
    max_streams: int
    facts: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    """The agent's owner paused sharing (reported by the agent)."""
    admin_paused: bool = False
    """An admin paused the agent (kept in the database across reconnects)."""
    connected_at: float = field(default_factory=time.time)
    paused_since: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def open_streams(self) -> int:
        return self.mux.conn.stream_count

    @property
    def is_paused(self) -> bool:
        return self.paused or self.admin_paused

    @property
    def available(self) -> bool:
        return not self.is_paused and not self.mux.closed and self.open_streams < self.max_streams

    def set_paused(self, paused: bool) -> None:
        """The owner paused or resumed sharing."""
        was = self.is_paused
        self.paused = paused
        self._paused_changed(was)

    def set_admin_paused(self, paused: bool) -> None:
        """An admin paused or resumed the agent; the agent is told so its owner sees it."""
        was = self.is_paused
        if paused != self.admin_paused:
            self.admin_paused = paused
            self.mux.send_control({"type": "pause" if paused else "resume"})
        self._paused_changed(was)

    def _paused_changed(self, was: bool) -> None:
        if self.is_paused != was:
            self.paused_since = time.time() if self.is_paused else None


class NoAgent(Exception):
    """No agent can take the stream; ``str(exc)`` says why, for the 503 body.

    ``code`` is the ``X-Exitpool-Error`` a user gets: ``no-agent``, or for a
    pinned agent ``agent-paused`` / ``agent-busy`` (at its stream limit).
    """

    def __init__(self, message: str, code: str = "no-agent") -> None:
        super().__init__(message)
        self.code = code


class Hub:
    """Online agents and the choice among them.

    Rotation: round-robin over distinct exit IPs first, then over the agents
    behind each IP, so consecutive requests leave from different addresses
    when the fleet has them. ``-session-`` routes stick to one agent while it
    stays online and available; ``-agent-`` routes pin one by name.
    """

    def __init__(self, sticky_max: int = 100_000) -> None:
        self.sessions: dict[int, AgentSession] = {}
        self._ip_turn = 0
        self._agent_turn: dict[str, int] = collections.defaultdict(int)
        self._sticky: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._sticky_max = sticky_max

    def register(self, session: AgentSession) -> AgentSession | None:
        """Add an online agent; returns its older session, if any, for the caller to close."""
        previous = self.sessions.get(session.agent_id)
        self.sessions[session.agent_id] = session
        return previous

    def unregister(self, session: AgentSession) -> None:
        if self.sessions.get(session.agent_id) is session:
            del self.sessions[session.agent_id]

    def by_name(self, name: str) -> AgentSession | None:
        return next((s for s in self.sessions.values() if s.name == name), None)

    def choose(self, route: Route, exclude: Iterable[int] = ()) -> AgentSession:
        """The agent for the next stream on ``route``; raises :class:`NoAgent`."""
        excluded = set(exclude)
        if route.agent is not None:
            session = self.by_name(route.agent)
            if session is None or session.agent_id in excluded:
                raise NoAgent(f"agent {route.agent!r} is not online")
            if session.is_paused:
                raise NoAgent(f"agent {route.agent!r} is paused", "agent-paused")
            if not session.available:
                raise NoAgent(f"agent {route.agent!r} is at its stream limit", "agent-busy")
            return session
        sticky_key = (route.user, route.session) if route.session is not None else None
        if sticky_key is not None:
            agent_id = self._sticky.get(sticky_key)
            session = self.sessions.get(agent_id) if agent_id is not None else None
            if session is not None and session.available and agent_id not in excluded:
                self._sticky.move_to_end(sticky_key)
                return session
        session = self._rotate(excluded)
        if sticky_key is not None:
            self._sticky[sticky_key] = session.agent_id
            self._sticky.move_to_end(sticky_key)
            while len(self._sticky) > self._sticky_max:
                self._sticky.popitem(last=False)
        return session

    def _rotate(self, excluded: set[int]) -> AgentSession:
        by_ip: dict[str, list[AgentSession]] = collections.defaultdict(list)
        for session in self.sessions.values():
            if session.available and session.agent_id not in excluded:
                by_ip[session.exit_ip].append(session)
        if not by_ip:
            if any(s.agent_id not in excluded for s in self.sessions.values()):
                raise NoAgent("every online agent is paused or busy")
            raise NoAgent("no agent is online")
        ips = sorted(by_ip)
        ip = ips[self._ip_turn % len(ips)]
        self._ip_turn += 1
        agents = sorted(by_ip[ip], key=lambda s: s.agent_id)
        turn = self._agent_turn[ip]
        self._agent_turn[ip] = turn + 1
        return agents[turn % len(agents)]

    async def close_all(self, code: int, reason: str) -> None:
        """Close every agent's WebSocket (server shutdown)."""
        for session in list(self.sessions.values()):
            await session.close(code, reason)

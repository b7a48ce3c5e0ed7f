"""What the admin shows of agents that are online right now.

Online state lives only in the running server's memory (:mod:`server.hub`).
These helpers read it from a Django thread without a round trip to the event
loop: copying the sessions dict is atomic, and a value read a moment late is
harmless for display. Outside ``exitpool-server run`` (commands, Django's test
client) nothing is online.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from server import live
from server.hub import AgentSession


@dataclass(frozen=True, slots=True)
class AgentLive:
    """One online agent as the admin shows it."""

    exit_ip: str
    connected_at: dt.datetime
    paused_by_owner: bool
    paused_by_admin: bool
    paused_since: dt.datetime | None
    open_streams: int
    max_streams: int
    rate_up: float
    """Bytes per second to targets, over the last few seconds."""
    rate_down: float
    """Bytes per second from targets."""

    @property
    def paused(self) -> bool:
        return self.paused_by_owner or self.paused_by_admin

    @property
    def paused_by(self) -> str:
        """``"admin"``, ``"owner"``, ``"admin and owner"`` or ``""``."""
        return " and ".join(
            who
            for who, yes in (("admin", self.paused_by_admin), ("owner", self.paused_by_owner))
            if yes
        )


def _sessions() -> list[AgentSession]:
    running = live.current()
    return [] if running is None else list(running.hub.sessions.values())


def _when(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def agent_live(agent_id: int) -> AgentLive | None:
    """The live state of an online agent, or None if it is offline."""
    running = live.current()
    if running is None:
        return None
    session = running.hub.sessions.get(agent_id)
    if session is None:
        return None
    rate_up, rate_down = running.accounting.agent_rates.get(agent_id, (0.0, 0.0))
    return AgentLive(
        exit_ip=session.exit_ip,
        connected_at=_when(session.connected_at),
        paused_by_owner=session.paused,
        paused_by_admin=session.admin_paused,
        paused_since=_when(session.paused_since) if session.paused_since is not None else None,
        open_streams=session.open_streams,
        max_streams=session.max_streams,
        rate_up=rate_up,
        rate_down=rate_down,
    )


def online_ids() -> set[int]:
    """Agents connected now, paused or not."""
    return {session.agent_id for session in _sessions()}


def paused_ids(by_owner: bool = True, by_admin: bool = True) -> set[int]:
    """Online agents paused by their owner and/or by an admin."""
    return {
        s.agent_id for s in _sessions() if (by_owner and s.paused) or (by_admin and s.admin_paused)
    }

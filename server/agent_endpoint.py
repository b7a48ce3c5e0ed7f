"""``/ws/agent``: who may connect, the HELLO, and the session an admitted agent gets.

What is decided here does not depend on how the WebSocket is carried (that is
:mod:`server.agent_socket`): the handshake's credentials, the HELLO, the
agent's row in the database, its multiplexer and its place in the hub. The
database is touched only at the handshake, at HELLO and at disconnect.

Handshake: ``Authorization: Bearer <credential>`` for an enrolled agent, or
``X-Exitpool-Enrollment-Key: <key>`` for a new one (exchanged for a credential
sent back once in WELCOME). Anything else is refused with HTTP 403 before the
WebSocket opens. With ``X-Exitpool-Check: 1`` the handshake is only a test
(the agent's "Test connection"): accepted, then closed at once with 1000
"check ok" — no HELLO, no enrollment, no write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from asgiref.sync import sync_to_async

import wire
from server.config import ServerConfig
from server.fleet.models import Agent, EnrollmentKey
from server.hub import AgentSession, Hub
from tunnel import Mux
from tunnel.mux import SendMessage
from wire import CloseCode, ProtocolError

log = logging.getLogger(__name__)


class Headers(Protocol):
    """The handshake's request headers (case-insensitive names)."""

    def get(self, key: str, /) -> str | None: ...


def _authenticate(credential: str | None, key: str | None) -> Agent | EnrollmentKey | None:
    if credential:
        return Agent.authenticate(credential)
    if key:
        return EnrollmentKey.find_valid(key)
    return None


def _admit(
    found: Agent | EnrollmentKey, exit_ip: str, hello: dict[str, Any]
) -> tuple[Agent, str | None]:
    if isinstance(found, EnrollmentKey):
        agent, credential = Agent.enroll(found, str(hello.get("name", "")), hello)
        agent.record_connect(exit_ip, hello)
        return agent, credential
    found.record_connect(exit_ip, hello)
    return found, None


def is_check(headers: Headers) -> bool:
    """The handshake is only the agent's "Test connection"."""
    return (headers.get("X-Exitpool-Check") or "").strip() == "1"


class AgentEndpoint:
    """Admission and sessions of the agents of one server process."""

    def __init__(self, hub: Hub, config: ServerConfig) -> None:
        self.hub = hub
        self.config = config
        self.limits = wire.Limits(
            stream_window=config.stream_window,
            max_frame_payload=config.max_frame_payload,
            max_message_size=config.max_ws_message,
            max_streams=config.max_streams_per_agent,
        )
        self.tasks: set[asyncio.Task[Any]] = set()
        """Work that outlives a socket's callbacks (database calls, closing a replaced agent)."""

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coroutine`` as a task that is kept until it ends."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def authenticate(self, headers: Headers, exit_ip: str) -> Agent | EnrollmentKey | None:
        """The agent or enrollment key the handshake names; ``None`` (logged) to refuse it."""
        authorization = (headers.get("Authorization") or "").strip()
        credential = (
            authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
        )
        key = (headers.get("X-Exitpool-Enrollment-Key") or "").strip() or None
        found = await sync_to_async(_authenticate)(credential, key)
        if found is None:
            log.warning(
                "agent from %s refused: %s",
                exit_ip,
                "unknown or revoked credential"
                if credential
                else "unknown, expired or revoked enrollment key"
                if key
                else "no credential",
            )
        return found

    def hello(self, text: str | None) -> dict[str, Any]:
        """The agent's first message, which must be a HELLO of our version (text)."""
        if text is None:
            raise ProtocolError("first message must be HELLO", CloseCode.BAD_HELLO)
        hello = wire.decode_control(text)
        if hello["type"] != "hello" or hello.get("version") != wire.PROTOCOL_VERSION:
            raise ProtocolError(
                f"expected HELLO version {wire.PROTOCOL_VERSION}", CloseCode.BAD_HELLO
            )
        return hello

    async def admit(
        self, found: Agent | EnrollmentKey, exit_ip: str, hello: dict[str, Any]
    ) -> tuple[Agent, str | None]:
        """Record the connection (enrolling a new agent): its row and, if new, its credential."""
        return await sync_to_async(_admit)(found, exit_ip, hello)

    def open_session(
        self,
        agent: Agent,
        new_credential: str | None,
        exit_ip: str,
        hello: dict[str, Any],
        send: SendMessage,
        close: Callable[[int, str], Awaitable[None]],
    ) -> AgentSession:
        """The admitted agent's session: WELCOME sent, registered in the hub (replacing an
        older connection of the same agent, which is closed)."""
        stream_cap = self.limits.max_streams
        if agent.max_streams is not None:
            stream_cap = min(stream_cap, agent.max_streams)
        mux = Mux(
            wire.Connection(wire.Role.SERVER, self.limits),
            send,
            on_control=lambda message: self._on_control(session, message, stream_cap),
        )
        max_streams = _streams_allowed(hello.get("max_streams"), stream_cap)
        session = AgentSession(
            agent_id=agent.pk,
            name=agent.name,
            exit_ip=exit_ip,
            mux=mux,
            close=close,
            max_streams=max_streams,
            facts={k: hello.get(k) for k in ("os", "agent_version")},
        )
        session.set_paused(bool(hello.get("paused", False)))
        welcome: dict[str, Any] = {
            "type": "welcome",
            "agent_id": agent.pk,
            "name": agent.name,
            "exit_ip": exit_ip,
            "limits": {
                "stream_window": self.limits.stream_window,
                "max_frame_payload": self.limits.max_frame_payload,
                "max_message_size": self.limits.max_message_size,
                "max_streams": max_streams,
            },
        }
        if new_credential is not None:
            welcome["credential"] = new_credential
        mux.send_control(welcome)
        session.set_admin_paused(agent.paused_by_admin)
        previous = self.hub.register(session)
        if previous is not None:
            self.spawn(_close(previous, CloseCode.DUPLICATE, "replaced by a newer connection"))
        log.info(
            "agent %s online from %s (%s, %s)%s",
            agent.name,
            exit_ip,
            hello.get("os", "?"),
            hello.get("agent_version", "?"),
            " — newly enrolled" if new_credential else "",
        )
        return session

    def close_session(self, session: AgentSession) -> None:
        """The agent's connection is gone: its streams end, it leaves the hub."""
        session.mux.close(wire.Reason.CONNECTION_LOST, f"agent {session.name} went offline")
        self.hub.unregister(session)
        log.info("agent %s offline", session.name)
        self.spawn(sync_to_async(_record_seen)(session.agent_id))

    def _on_control(self, session: AgentSession, message: dict[str, Any], stream_cap: int) -> None:
        kind = message["type"]
        if kind in ("pause", "resume"):
            session.set_paused(kind == "pause")
            log.info("agent %s %s sharing", session.name, "paused" if session.paused else "resumed")
        elif kind == "stats":
            session.stats = message
        elif kind == "limits":
            session.max_streams = _streams_allowed(message.get("max_streams"), stream_cap)
            log.info("agent %s now carries up to %d streams", session.name, session.max_streams)


async def _close(session: AgentSession, code: int, reason: str) -> None:
    await session.close(code, reason)


def _record_seen(agent_id: int) -> None:
    Agent(pk=agent_id).record_seen()


def _streams_allowed(wanted: object, cap: int) -> int:
    """Streams the hub gives an agent: what it asked for (HELLO or LIMITS), within ``cap``."""
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0:
        return min(cap, wanted)
    return cap

"""``/ws/agent``: the agents' WebSocket, as a plain ASGI callable.

Not a channels consumer: channels runs ``close_old_connections`` in a thread
for every message, which caps a consumer near 5,000 frames/s, while daphne
serves a plain callable at about 60,000 (DESIGN.md, principle 3). The
database is touched only at the handshake, at HELLO and at disconnect.

Handshake: ``Authorization: Bearer <credential>`` for an enrolled agent, or
``X-Exitpool-Enrollment-Key: <key>`` for a new one (exchanged for a credential
sent back once in WELCOME). Anything else is refused before the WebSocket
opens, which daphne answers with HTTP 403. With ``X-Exitpool-Check: 1`` the
handshake is only a test (the agent's "Test connection"): accepted, then
closed at once with 1000 "check ok" — no HELLO, no enrollment, no write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async

import wire
from server.config import ServerConfig
from server.fleet.models import Agent, EnrollmentKey
from server.hub import AgentSession, Hub
from tunnel import Mux
from wire import CloseCode, ProtocolError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


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


class AgentEndpoint:
    """The ASGI callable serving one agent WebSocket per call."""

    def __init__(self, hub: Hub, config: ServerConfig) -> None:
        self.hub = hub
        self.config = config
        self.limits = wire.Limits(
            stream_window=config.stream_window,
            max_frame_payload=config.max_frame_payload,
            max_message_size=config.max_ws_message,
            max_streams=config.max_streams_per_agent,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        exit_ip = (scope.get("client") or ("unknown", 0))[0]
        authorization = _header(scope, b"authorization") or ""
        credential = (
            authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
        )
        key = _header(scope, b"x-exitpool-enrollment-key")
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
            await send({"type": "websocket.close", "code": CloseCode.UNAUTHORIZED})
            return
        await send({"type": "websocket.accept"})
        if _header(scope, b"x-exitpool-check") == "1":
            log.info("connection check from %s: accepted", exit_ip)
            await send({"type": "websocket.close", "code": CloseCode.NORMAL, "reason": "check ok"})
            return
        hello = await self._hello(receive, send, exit_ip)
        if hello is None:
            return
        agent, new_credential = await sync_to_async(_admit)(found, exit_ip, hello)
        await self._serve(agent, new_credential, exit_ip, hello, receive, send)

    async def _hello(self, receive: Receive, send: Send, exit_ip: str) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(self.config.agent_hello_timeout):
                message = await receive()
            if message["type"] != "websocket.receive" or message.get("text") is None:
                raise ProtocolError("first message must be HELLO", CloseCode.BAD_HELLO)
            hello = wire.decode_control(message["text"])
            if hello["type"] != "hello" or hello.get("version") != wire.PROTOCOL_VERSION:
                raise ProtocolError(
                    f"expected HELLO version {wire.PROTOCOL_VERSION}", CloseCode.BAD_HELLO
                )
            return hello
        except (TimeoutError, ProtocolError) as exc:
            reason = "no HELLO in time" if isinstance(exc, TimeoutError) else str(exc)
            log.warning("agent from %s dropped: %s", exit_ip, reason)
            await send({"type": "websocket.close", "code": CloseCode.BAD_HELLO, "reason": reason})
            return None

    async def _serve(
        self,
        agent: Agent,
        new_credential: str | None,
        exit_ip: str,
        hello: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        closed = False

        async def send_message(message: bytes | str) -> None:
            if isinstance(message, bytes):
                await send({"type": "websocket.send", "bytes": message})
            else:
                await send({"type": "websocket.send", "text": message})

        async def close(code: int, reason: str) -> None:
            nonlocal closed
            if not closed:
                closed = True
                session.mux.close(wire.Reason.CONNECTION_LOST, reason)
                await send({"type": "websocket.close", "code": code, "reason": reason})

        stream_cap = self.limits.max_streams
        if agent.max_streams is not None:
            stream_cap = min(stream_cap, agent.max_streams)
        mux = Mux(
            wire.Connection(wire.Role.SERVER, self.limits),
            send_message,
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
            await previous.close(CloseCode.DUPLICATE, "replaced by a newer connection")
        log.info(
            "agent %s online from %s (%s, %s)%s",
            agent.name,
            exit_ip,
            hello.get("os", "?"),
            hello.get("agent_version", "?"),
            " — newly enrolled" if new_credential else "",
        )
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    if (data := message.get("bytes")) is not None:
                        mux.feed_bytes(data)
                    elif (text := message.get("text")) is not None:
                        mux.feed_text(text)
                elif kind == "websocket.disconnect":
                    break
        except ProtocolError as exc:
            log.warning("agent %s broke the protocol, closing it: %s", agent.name, exc)
            await close(exc.close_code, "protocol error")
        except Exception:  # a bug of ours: this agent is closed, the server keeps going
            log.exception("agent %s: unexpected error, closing it", agent.name)
            await close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            closed = True
            mux.close(wire.Reason.CONNECTION_LOST, f"agent {agent.name} went offline")
            self.hub.unregister(session)
            log.info("agent %s offline", agent.name)
            await asyncio.shield(sync_to_async(agent.record_seen)())

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


def _streams_allowed(wanted: object, cap: int) -> int:
    """Streams the hub gives an agent: what it asked for (HELLO or LIMITS), within ``cap``."""
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0:
        return min(cap, wanted)
    return cap

"""One agent's WebSocket, served on the server's own loop: websockets' sans-IO protocol
driven straight from an asyncio ``Protocol``.

The agents' socket is the hot path, so it does not go through daphne: a
received message reaches the multiplexer in the same ``data_received`` call
(no ASGI queue, no task wake-up), and a sent message is one ``write`` (no
deferred Twisted write per message). ``websockets.ServerProtocol`` does the
parsing, the opening and closing handshakes, ping answers and the message
size limit (1009); this module adds what daphne and autobahn did around it:

* the handshake within :data:`HANDSHAKE_TIMEOUT`, credentials checked before
  the 101 (an unknown one gets HTTP 403), the agent's exit IP from
  ``X-Forwarded-For`` when the peer is a trusted proxy;
* heartbeats: a ping every ``ws_ping_interval``; no pong within
  ``ws_ping_timeout`` of an unanswered ping drops the agent;
* close codes as the endpoint asks (1001 at shutdown, 1002 for a protocol
  error, 4001 revoked, ...), and the TCP connection cut if the agent does
  not answer a close within :data:`CLOSE_TIMEOUT`;
* backpressure both ways: sends wait while the socket's buffer is above
  :data:`WRITE_BUFFER_HIGH`, and reading pauses while the handshake and the
  HELLO are checked in the database.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Sequence
from enum import Enum, auto
from typing import Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

import wire
from server.agent_endpoint import AgentEndpoint, is_check
from server.fleet.models import Agent, EnrollmentKey
from server.forwarded import Network, client_address
from server.hub import AgentSession
from wire import CloseCode, ProtocolError

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a new connection has to complete the opening handshake."""

CLOSE_TIMEOUT = 5.0
"""Seconds an agent has to answer our close before its TCP connection is cut."""

WRITE_BUFFER_HIGH = 2 * 1024 * 1024
"""Bytes queued for an agent's socket beyond which sends wait for it to drain."""

_protocol_log = logging.getLogger(f"{__name__}.websockets")
# websockets logs every handshake header at DEBUG (credentials and enrollment keys) and
# each closed connection at INFO; we log what matters ourselves.
_protocol_log.setLevel(logging.WARNING)


class Phase(Enum):
    HANDSHAKE = auto()
    HELLO = auto()
    ADMITTING = auto()
    SERVING = auto()
    CLOSING = auto()


def serve_socket(sock: socket.socket, endpoint: AgentEndpoint, trusted: Sequence[Network]) -> None:
    """Serve an accepted socket whose first bytes are an agent's WebSocket request."""

    async def connect() -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: AgentSocket(endpoint, trusted), sock)
        except OSError as exc:
            log.debug("agent socket lost before it was served: %r", exc)
            sock.close()

    endpoint.spawn(connect())


def frame_header(opcode: int, length: int) -> bytes:
    """The header of an unmasked, final frame (what a server sends)."""
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, length)
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


class AgentSocket(asyncio.Protocol):
    """One agent's connection, from the HTTP upgrade to the TCP close."""

    def __init__(self, endpoint: AgentEndpoint, trusted: Sequence[Network]) -> None:
        self.endpoint = endpoint
        self.config = endpoint.config
        self.trusted = trusted
        self.ws = ServerProtocol(max_size=self.config.max_ws_message, logger=_protocol_log)
        self.phase = Phase.HANDSHAKE
        self.exit_ip = "unknown"
        self.session: AgentSession | None = None
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._found: Agent | EnrollmentKey | None = None
        self._held: list[Frame] = []
        """Frames that arrived while the HELLO was being admitted (handled after it)."""
        self._fragments: list[bytes] = []
        self._fragmented: Opcode | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._next_ping: asyncio.TimerHandle | None = None
        self._pong_due: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._lost = False

    @property
    def _who(self) -> str:
        """The agent's name once it said HELLO, else where it connects from (for the log)."""
        return self.session.name if self.session else f"from {self.exit_ip}"

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        peer = transport.get_extra_info("peername")
        self.exit_ip = str(peer[0]) if peer else "unknown"
        self._set_deadline(HANDSHAKE_TIMEOUT, "no WebSocket handshake in time")

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif not isinstance(event, Frame):
                continue
            elif self.phase is Phase.ADMITTING:
                self._held.append(event)
            else:
                self._on_frame(event)
        self._after_receiving()

    def eof_received(self) -> bool | None:
        return None  # the agent is gone: close our side too (connection_lost follows)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        for timer in (self._deadline, self._next_ping, self._pong_due):
            if timer is not None:
                timer.cancel()
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("agent socket closed"))
            self._drained.exception()  # retrieved: nobody may be waiting for it
        self.phase = Phase.CLOSING
        if self.session is not None:
            session, self.session = self.session, None
            self.endpoint.close_session(session)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # ------------------------------------------------------------ handshake

    def _on_request(self, request: Request) -> None:
        assert self.transport is not None
        self.transport.pause_reading()  # nothing more is read until the handshake is decided
        self.exit_ip = client_address(
            self.exit_ip, request.headers.get_all("X-Forwarded-For"), self.trusted
        )
        response = self.ws.accept(request)
        if response.status_code != 101:
            log.info("not a WebSocket handshake from %s: %s", self.exit_ip, response.reason_phrase)
            self.ws.send_response(response)
            return
        self.endpoint.spawn(self._authenticate(request, response))

    async def _authenticate(self, request: Request, response: Any) -> None:
        try:
            found = await self.endpoint.authenticate(request.headers, self.exit_ip)
        except Exception:  # the database failed: this agent tries again later
            log.exception("agent from %s: could not check its credentials", self.exit_ip)
            self._abort()
            return
        if self._lost:
            return
        if found is None:
            self.ws.send_response(self.ws.reject(403, "Unknown agent credential.\n"))
            self._write_out()
            return
        self.ws.send_response(response)
        self._clear_deadline()
        self._start_heartbeat()
        if is_check(request.headers):
            log.info("connection check from %s: accepted", self.exit_ip)
            self._close(CloseCode.NORMAL, "check ok")
        else:
            self._found = found
            self.phase = Phase.HELLO
            self._set_deadline(self.config.agent_hello_timeout, "no HELLO in time")
        self._write_out()
        self._resume_reading()

    # ------------------------------------------------------------ messages

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        data = cast(bytes, frame.data)  # a server's frames are unmasked into new bytes
        if opcode is Opcode.PONG:
            if self._pong_due is not None:
                self._pong_due.cancel()
                self._pong_due = None
            return
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragmented, self._fragments = opcode, [data]
                return
            self._on_message(opcode, data)
        elif opcode is Opcode.CONT and self._fragmented is not None:
            self._fragments.append(data)
            if frame.fin:
                opcode, self._fragmented = self._fragmented, None
                whole, self._fragments = b"".join(self._fragments), []
                self._on_message(opcode, whole)
        elif opcode is Opcode.CLOSE and self.phase is not Phase.CLOSING:
            self.phase = Phase.CLOSING  # websockets answered it; the agent closes the TCP side

    def _on_message(self, opcode: Opcode, data: bytes) -> None:
        if self.phase is Phase.SERVING:
            assert self.session is not None
            try:
                if opcode is Opcode.BINARY:
                    self.session.mux.feed_bytes(data)
                else:
                    self.session.mux.feed_text(data.decode())
            except (ProtocolError, UnicodeDecodeError) as exc:
                code = getattr(exc, "close_code", CloseCode.PROTOCOL_ERROR)
                log.warning("agent %s broke the protocol, closing it: %s", self.session.name, exc)
                self._close(code, "protocol error")
            except Exception:  # a bug of ours: this agent is closed, the server keeps going
                log.exception("agent %s: unexpected error, closing it", self.session.name)
                self._close(CloseCode.INTERNAL_ERROR, "internal error")
        elif self.phase is Phase.HELLO:
            self._on_hello(opcode, data)

    def _on_hello(self, opcode: Opcode, data: bytes) -> None:
        self._clear_deadline()
        try:
            hello = self.endpoint.hello(data.decode() if opcode is Opcode.TEXT else None)
        except (ProtocolError, UnicodeDecodeError) as exc:
            self._refuse_hello(str(exc))
            return
        assert self.transport is not None and self._found is not None
        self.phase = Phase.ADMITTING
        self.transport.pause_reading()
        self.endpoint.spawn(self._admit(self._found, hello))

    def _refuse_hello(self, reason: str) -> None:
        log.warning("agent from %s dropped: %s", self.exit_ip, reason)
        self._close(CloseCode.BAD_HELLO, reason)

    async def _admit(self, found: Agent | EnrollmentKey, hello: dict[str, Any]) -> None:
        try:
            agent, credential = await self.endpoint.admit(found, self.exit_ip, hello)
        except Exception:  # the database failed: this agent tries again later
            log.exception("agent from %s: could not record its connection", self.exit_ip)
            self._abort()
            return
        if self._lost or self.phase is not Phase.ADMITTING:
            return
        self.phase = Phase.SERVING
        self.session = self.endpoint.open_session(
            agent, credential, self.exit_ip, hello, self._send, self._close_async
        )
        held, self._held = self._held, []
        for frame in held:
            self._on_frame(frame)
        self._after_receiving()
        self._resume_reading()

    def _after_receiving(self) -> None:
        """Send what the protocol produced; report a broken WebSocket once."""
        if self.ws.parser_exc is not None and self.phase is not Phase.CLOSING:
            log.warning("agent %s broke the WebSocket protocol: %s", self._who, self.ws.parser_exc)
            self._enter_closing("WebSocket protocol error")
        self._write_out()

    # ------------------------------------------------------------ sending

    async def _send(self, message: bytes | str) -> None:
        """Send one message to the agent (the mux's ``send``); waits while the socket is full."""
        transport = self.transport
        if self.phase is not Phase.SERVING or transport is None or transport.is_closing():
            raise ConnectionResetError("agent socket closed")
        if isinstance(message, str):
            self.ws.send_text(message.encode())
            self._write_out()
        else:
            transport.write(frame_header(Opcode.BINARY, len(message)) + message)
        if self._writing_paused:
            if self._drained is None:
                self._drained = self._loop.create_future()
            await asyncio.shield(self._drained)

    def _write_out(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.ws.data_to_send():
            if transport.is_closing():
                return
            if data:
                transport.write(data)
            else:  # websockets' end of stream: a server closes the TCP connection
                transport.close()
        if self.ws.close_expected() and self._deadline is None and not transport.is_closing():
            self._set_deadline(CLOSE_TIMEOUT, "no answer to our close in time")

    # ------------------------------------------------------------ closing

    async def _close_async(self, code: int, reason: str) -> None:
        self._close(code, reason)

    def _close(self, code: int, reason: str) -> None:
        """Close the WebSocket with ``code``; the session's streams end at once."""
        if self.phase is Phase.CLOSING:
            return
        if self.ws.state is State.OPEN:
            self.ws.send_close(code, reason.encode()[:123].decode(errors="ignore"))
        self._enter_closing(reason)
        self._write_out()

    def _enter_closing(self, reason: str) -> None:
        self.phase = Phase.CLOSING
        if self.session is not None:
            self.session.mux.close(wire.Reason.CONNECTION_LOST, reason)

    def _set_deadline(self, seconds: float, why: str) -> None:
        self._clear_deadline()
        self._deadline = self._loop.call_later(seconds, self._deadline_passed, why)

    def _clear_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self, why: str) -> None:
        self._deadline = None
        if self.phase is Phase.HELLO:
            self._refuse_hello(why)
            return
        log.info("agent connection from %s cut: %s", self.exit_ip, why)
        self._abort()

    def _abort(self) -> None:
        self._enter_closing("connection cut")
        if self.transport is not None:
            self.transport.abort()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # ------------------------------------------------------------ heartbeat

    def _start_heartbeat(self) -> None:
        self._next_ping = self._loop.call_later(self.config.ws_ping_interval, self._ping)

    def _ping(self) -> None:
        if self.phase is Phase.CLOSING or self.ws.state is not State.OPEN:
            return
        self.ws.send_ping(b"")
        self._write_out()
        self._next_ping = self._loop.call_later(self.config.ws_ping_interval, self._ping)
        if self._pong_due is None:
            self._pong_due = self._loop.call_later(self.config.ws_ping_timeout, self._no_pong)

    def _no_pong(self) -> None:
        self._pong_due = None
        log.warning(
            "agent %s: no pong within %.0f s of a ping, dropping it",
            self._who,
            self.config.ws_ping_timeout,
        )
        self._abort()

"""Multiplexer: one :class:`wire.Connection` on an asyncio loop.

The mux turns wire events into calls on per-stream handlers and turns queued
frames into WebSocket messages. Output is flushed once per loop iteration
(``call_soon``), so everything produced in one iteration — often many small
DATA and WINDOW frames — leaves as one message.

Sends start eagerly: the flush runs the ``send`` coroutine itself, and only a
send that has to wait (a full socket) continues in a writer task. Both
WebSocket layers we drive (daphne's ASGI ``send``, aiohttp's ``send_bytes``)
nearly always finish without waiting, so a message goes out in the iteration
that flushed it instead of one later, and without a task per flush (Python
3.11 has no eager tasks).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol

import wire
from wire import Reason

log = logging.getLogger(__name__)

SendMessage = Callable[[bytes | str], Coroutine[Any, Any, None]]


class StreamHandler(Protocol):
    """What the mux calls for one stream (implemented by :class:`~tunnel.link.SocketLink`)."""

    def on_data(self, data: bytes | memoryview) -> None: ...
    def on_credit(self) -> None: ...
    def on_end(self) -> None: ...
    def on_reset(self, reason: Reason, message: str) -> None: ...


class Mux:
    """Routes one connection's streams; call :meth:`feed_bytes`/:meth:`feed_text` per message.

    ``send`` writes one WebSocket message; it may await (backpressure on the
    socket) — messages are sent strictly in order by one writer task.
    ``on_control`` receives control messages; ``on_open`` (agent side) receives
    stream requests. A :class:`wire.ProtocolError` from the peer propagates out of
    ``feed_*`` so the caller can close the connection with its code.
    """

    def __init__(
        self,
        conn: wire.Connection,
        send: SendMessage,
        on_control: Callable[[dict[str, Any]], None] = lambda message: None,
        on_open: Callable[[int, str, int], None] | None = None,
    ) -> None:
        self.conn = conn
        self._send = send
        self._on_control = on_control
        self._on_open = on_open
        self._handlers: dict[int, StreamHandler] = {}
        self._early: dict[int, list[wire.Event]] = {}
        """Events of streams the agent accepted whose opener has not attached a handler yet
        (it resumes an iteration later; the agent's first bytes or its RESET may already be
        here): replayed by :meth:`attach`. Their DATA is bounded by the stream window."""
        self._opening: dict[int, asyncio.Future[wire.StreamAccepted | wire.StreamRejected]] = {}
        self._outbox: collections.deque[bytes | str] = collections.deque()
        self._flush_scheduled = False
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ input

    def feed_bytes(self, message: bytes) -> None:
        """Process a binary message; raises :class:`wire.ProtocolError` on bad input."""
        self.conn.receive_bytes(message)
        self._dispatch()

    def feed_text(self, text: str) -> None:
        self.conn.receive_text(text)
        self._dispatch()

    def _dispatch(self) -> None:
        for event in self.conn.events_received():
            self._handle_safely(event)
        self.flush_soon()

    def _handle_safely(self, event: wire.Event) -> None:
        try:
            self._handle(event)
        except Exception:
            sid = getattr(event, "stream_id", None)
            if sid is None:
                raise
            # One stream's failure (a bug, a socket error) ends that stream, never the
            # connection and every other stream on it.
            log.exception("stream %d: handling %s failed", sid, type(event).__name__)
            handler = self._handlers.get(sid)
            self.reset(sid, Reason.INTERNAL, "internal error")
            if handler is not None:
                with contextlib.suppress(Exception):
                    handler.on_reset(Reason.INTERNAL, "internal error")

    def _handle(self, event: wire.Event) -> None:
        if self._early and (early := self._early.get(getattr(event, "stream_id", 0))) is not None:
            if isinstance(event, wire.DataReceived):  # a copy: not the whole message pinned
                event = wire.DataReceived(event.stream_id, bytes(event.data))
            early.append(event)
            return
        match event:
            case wire.DataReceived(sid, data):
                handler = self._handlers.get(sid)
                if handler is not None:
                    handler.on_data(data)
                else:  # nobody will ever read it: give the credit back at once
                    self.conn.consumed(sid, len(data))
            case wire.CreditAdded(sid):
                if (handler := self._handlers.get(sid)) is not None:
                    handler.on_credit()
            case wire.EndReceived(sid):
                if (handler := self._handlers.get(sid)) is not None:
                    handler.on_end()
            case wire.StreamReset(sid, reason, message):
                if (handler := self._handlers.pop(sid, None)) is not None:
                    handler.on_reset(reason, message)
                self._settle(sid, wire.StreamRejected(sid, reason, message))
            case wire.StreamAccepted(sid) | wire.StreamRejected(sid):
                self._settle(sid, event)
            case wire.StreamOpenRequested(sid, host, port):
                if self._on_open is None:
                    self.reject(sid, Reason.INTERNAL, "not accepting streams")
                else:
                    self._on_open(sid, host, port)
            case wire.ControlReceived(message):
                self._on_control(message)

    def _settle(self, sid: int, result: wire.StreamAccepted | wire.StreamRejected) -> None:
        future = self._opening.pop(sid, None)
        if future is not None and not future.done():
            future.set_result(result)
            if isinstance(result, wire.StreamAccepted):
                self._early[sid] = []  # until the opener attaches its handler

    # ---------------------------------------------------------------- streams

    async def open(
        self, host: str, port: int, timeout: float
    ) -> tuple[int, wire.StreamAccepted | wire.StreamRejected]:
        """(server) Open a stream and wait for the agent's answer.

        Returns the stream id and the agent's answer; raises ``TimeoutError`` when
        none came within ``timeout`` seconds. On timeout or cancellation the stream
        is reset, so the agent drops its half-made connection.
        """
        if self._closed:
            return 0, wire.StreamRejected(0, Reason.CONNECTION_LOST, "agent went offline")
        sid = self.conn.open_stream(host, port)
        future = asyncio.get_running_loop().create_future()
        self._opening[sid] = future
        self.flush_soon()
        try:
            async with asyncio.timeout(timeout):
                return sid, await future
        except BaseException:
            self._opening.pop(sid, None)
            self.reset(sid, Reason.CANCELLED, "open abandoned")
            raise

    def accept(self, sid: int, peer: str) -> None:
        """(agent) The target is connected: send OPEN_OK."""
        self.conn.accept_stream(sid, peer)
        self.flush_soon()

    def reject(self, sid: int, reason: Reason, message: str) -> None:
        """(agent) The stream cannot open: send OPEN_FAIL."""
        self.conn.reject_stream(sid, reason, message)
        self.flush_soon()

    def attach(self, sid: int, handler: StreamHandler) -> None:
        """Route the stream's events to ``handler`` from now on, starting with any that
        arrived since :meth:`open` returned."""
        self._handlers[sid] = handler
        for event in self._early.pop(sid, ()):
            self._handle_safely(event)

    def detach(self, sid: int) -> None:
        self._handlers.pop(sid, None)

    def reset(self, sid: int, reason: Reason, message: str = "") -> None:
        """Reset a stream and forget its handler (its own teardown is the caller's)."""
        self._handlers.pop(sid, None)
        self._early.pop(sid, None)
        if not self._closed:
            self.conn.reset_stream(sid, reason, message)
            self.flush_soon()

    def send_control(self, message: dict[str, Any]) -> None:
        if not self._closed:
            self.conn.send_control(message)
            self.flush_soon()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, reason: Reason = Reason.CONNECTION_LOST, message: str = "") -> None:
        """The WebSocket is gone: every stream and pending open ends with ``reason``."""
        if self._closed:
            return
        self._closed = True
        handlers, self._handlers = self._handlers, {}
        self._early.clear()
        for handler in handlers.values():
            handler.on_reset(reason, message)
        for sid, future in list(self._opening.items()):
            if not future.done():
                future.set_result(wire.StreamRejected(sid, reason, message))
        self._opening.clear()
        self._outbox.clear()
        if self._writer is not None:
            self._writer.cancel()

    # ----------------------------------------------------------------- output

    def flush_soon(self) -> None:
        """Send what the connection queued, once, at the end of this loop iteration."""
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        messages = self.conn.data_to_send()
        if not messages:
            return
        if self._writer is not None and not self._writer.done():
            self._outbox.extend(messages)  # a send is waiting for the socket: keep the order
            return
        for index, message in enumerate(messages):
            send = self._send(message)
            try:
                waiting = send.send(None)
            except StopIteration:
                continue
            except Exception as exc:  # the socket broke: the reader side will see it close
                log.debug("send failed: %r", exc)
                return
            self._outbox.extend(messages[index + 1 :])
            self._writer = asyncio.get_running_loop().create_task(self._write(send, waiting))
            return

    async def _write(self, send: Coroutine[Any, Any, None], waiting: Any) -> None:
        """Finish a send that had to wait, then everything queued behind it, in order."""
        try:
            await _finish(send, waiting)
            while self._outbox:
                await self._send(self._outbox.popleft())
        except asyncio.CancelledError:
            send.close()  # cancelled before it could resume it: let the send unwind
            raise
        except Exception as exc:  # the socket broke: the reader side will see it close
            log.debug("send failed: %r", exc)
            self._outbox.clear()


@types.coroutine
def _finish(coroutine: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """Go on running a coroutine already stepped once by hand, as its own task would.

    ``waiting`` is what its first step yielded (the future it waits for); it is
    handed on to the task running us, and results or exceptions go back in.
    """
    while True:
        try:
            result = yield waiting
        except BaseException as exc:  # e.g. our task was cancelled: the send sees it too
            try:
                waiting = coroutine.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting = coroutine.send(result)
        except StopIteration:
            return

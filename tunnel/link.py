"""Joining a TCP socket to a stream, with flow control both ways.

Socket → stream: bytes go out only within the peer's credit; the excess of one
read waits in a backlog and the socket stops being read until credit returns.
Stream → socket: bytes go into the transport at once and their credit is given
back only while the transport is not above its high-water mark, so a slow
socket holds the peer to one window.

Nagle is off on every TCP socket a link relays on (relayed bytes are already
batched; delaying them only adds latency), without a ``setsockopt`` per link:
asyncio and uvloop turn it off on the transports they accept and connect, and
the agent's source-bound socket, which asyncio does not, sets it itself
(``tests/unit/test_nodelay.py`` holds both loops to this).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import cast

from tunnel.mux import Mux
from wire import Reason

WRITE_HIGH_WATER = 64 * 1024
"""Bytes buffered towards a socket before we stop returning credit to the peer."""

_LINGER_RST = struct.pack("ii", 1, 0)


def abort_with_rst(transport: asyncio.BaseTransport) -> None:
    """Close so the other end sees a reset, not a clean end: truncation must look like an error."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()  # type: ignore[attr-defined]


class StreamSender:
    """Writes into one stream without ever exceeding the peer's credit.

    ``pause`` and ``resume`` stop and restart the source (normally a socket's
    reading), so the backlog never grows beyond what one read delivered.
    """

    def __init__(
        self, mux: Mux, sid: int, pause: Callable[[], None], resume: Callable[[], None]
    ) -> None:
        self.mux = mux
        self.sid = sid
        self._pause = pause
        self._resume = resume
        self._backlog: collections.deque[bytes] = collections.deque()
        self._fin_pending = False
        self.sent = 0

    def send(self, data: bytes) -> None:
        if self._backlog:
            self._backlog.append(data)
            return
        credit = self.mux.conn.credit(self.sid)
        if len(data) <= credit:
            self._emit(data)
            if credit == len(data):
                self._pause()
            return
        if credit:
            self._emit(data[:credit])
            data = data[credit:]
        self._backlog.append(data)
        self._pause()

    def send_fin(self) -> None:
        if self._backlog:
            self._fin_pending = True
        elif self.mux.conn.has_stream(self.sid):
            self.mux.conn.send_fin(self.sid)
            self.mux.flush_soon()

    def on_credit(self) -> None:
        credit = self.mux.conn.credit(self.sid)
        while self._backlog and credit:
            data = self._backlog.popleft()
            if len(data) > credit:
                self._backlog.appendleft(data[credit:])
                data = data[:credit]
            self._emit(data)
            credit -= len(data)
        if not self._backlog:
            if self._fin_pending:
                self._fin_pending = False
                self.send_fin()
            elif credit:
                self._resume()

    @property
    def backlog_size(self) -> int:
        return sum(len(chunk) for chunk in self._backlog)

    def _emit(self, data: bytes) -> None:
        self.mux.conn.send_data(self.sid, data)
        self.sent += len(data)
        self.mux.flush_soon()


class SocketLink(asyncio.Protocol):
    """One TCP connection joined to one stream: bytes, half-close and reset, both ways.

    ``on_connected`` runs when the socket is bound, before any byte is relayed.
    ``on_close`` is called once when the link is finished, cleanly or not, with
    ``None`` for a clean end or the reason it was cut.
    """

    def __init__(
        self,
        mux: Mux,
        sid: int,
        on_close: Callable[[SocketLink, str | None], None] | None = None,
        on_connected: Callable[[SocketLink], None] | None = None,
    ) -> None:
        self.mux = mux
        self.sid = sid
        self._on_close = on_close
        self._on_connected = on_connected
        self.transport: asyncio.Transport | None = None
        self.sender = StreamSender(mux, sid, self._pause_reading, self._resume_reading)
        self.received = 0
        self._unacked = 0
        self._writing_paused = False
        self._local_eof = False
        self._remote_eof = False
        self._done = False

    # ------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.bind(cast(asyncio.Transport, transport))  # uvloop's is not a subclass

    def bind(self, transport: asyncio.Transport) -> None:
        """Take over a transport (also used after ``set_protocol`` from the gateway)."""
        self.transport = transport
        if self._on_connected is not None:
            self._on_connected(self)  # e.g. OPEN_OK, which must precede any DATA
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.mux.attach(self.sid, self)
        if self.mux.conn.credit(self.sid) == 0:
            transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.sender.send(data)

    def eof_received(self) -> bool:
        self._local_eof = True
        self.sender.send_fin()
        self._maybe_finish()
        return True  # keep the write side open: TCP half-close

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done:
            clean = self._local_eof and self._remote_eof
            if not clean:
                self.mux.reset(self.sid, Reason.CONNECTION_LOST, "connection closed")
            self._finish(None if clean else "connection closed")

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._unacked:
            unacked, self._unacked = self._unacked, 0
            self.mux.conn.consumed(self.sid, unacked)
            self.mux.flush_soon()

    # ------------------------------------------------------ tunnel.StreamHandler

    def on_data(self, data: bytes | memoryview) -> None:
        self.received += len(data)
        transport = self.transport
        if transport is None or transport.is_closing():
            self.mux.conn.consumed(self.sid, len(data))  # nobody to take it: credit back at once
            return
        self._deliver(transport, data)

    def _deliver(self, transport: asyncio.Transport, data: bytes | memoryview) -> None:
        """Write stream data to the socket; its credit goes back once the socket took it."""
        transport.write(data)
        if self._writing_paused:
            self._unacked += len(data)
        else:
            self.mux.conn.consumed(self.sid, len(data))

    def on_credit(self) -> None:
        self.sender.on_credit()

    def on_end(self) -> None:
        self._remote_eof = True
        if self.transport is not None and self.transport.can_write_eof():
            try:
                self.transport.write_eof()
            except OSError:  # the socket broke before asyncio noticed (ENOTCONN)
                abort_with_rst(self.transport)  # connection_lost follows and resets the stream
                return
        self._maybe_finish()

    def on_reset(self, reason: Reason, message: str) -> None:
        if self.transport is not None:
            if reason is Reason.CANCELLED:
                self.transport.close()  # the other side is simply done: a normal close
            else:
                abort_with_rst(self.transport)  # a broken stream must look broken
        self._finish(message or reason.name.lower())

    # ------------------------------------------------------------------ owner

    @property
    def done(self) -> bool:
        """The link has finished; the stream is gone or fully closed."""
        return self._done

    def end(self) -> None:
        """Let go of the stream gracefully: FIN if all our bytes went out, else RESET.

        For owners whose socket is done with the stream (an HTTP response ended)
        while the peer may still be open: the peer answers with its own FIN and
        both ends forget the stream, so nothing lingers.
        """
        if self._done:
            return
        if self.sender.backlog_size:
            self.mux.reset(self.sid, Reason.CANCELLED, "closed with data unsent")
        else:
            self.sender.send_fin()
        self._finish(None)

    def cancel(self, reason: Reason, message: str) -> None:
        """Drop the stream (reset it) while keeping the socket: the owner moves on."""
        if not self._done:
            self.mux.reset(self.sid, reason, message)
            self._finish(None)

    # -------------------------------------------------------------- internals

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _maybe_finish(self) -> None:
        if self._local_eof and self._remote_eof and not self._done:
            self.mux.detach(self.sid)
            if self.transport is not None:
                self.transport.close()
            self._finish(None)

    def _finish(self, error: str | None) -> None:
        if self._done:
            return
        self._done = True
        self.mux.detach(self.sid)
        if self._on_close is not None:
            self._on_close(self, error)

"""A link to a target that the owner can see and slow down.

:class:`TargetLink` is a :class:`tunnel.SocketLink` that also counts its
bytes for the traffic meter and obeys the bandwidth limit. Flow control keeps
working underneath: reading from the target stops when the stream has no
credit *or* the download throttle is blocked; stream data waits while the
upload throttle is blocked, and its credit goes back to the server only once
the target socket took it — so a limit never costs more memory than the
windows do.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from desktop_agent.engine.bandwidth import Bandwidth
from desktop_agent.engine.traffic import TrafficMeter
from tunnel import Mux, SocketLink


class TargetLink(SocketLink):
    """One target connection to ``host:port`` (as asked), counted and rate-limited."""

    def __init__(
        self,
        mux: Mux,
        sid: int,
        host: str,
        port: int,
        meter: TrafficMeter,
        bandwidth: Bandwidth,
        on_close: Callable[[SocketLink, str | None], None] | None = None,
        on_connected: Callable[[SocketLink], None] | None = None,
    ) -> None:
        super().__init__(mux, sid, on_close, on_connected)
        self.host = host
        self.port = port
        self.meter = meter
        self.bandwidth = bandwidth
        self.bytes_down = 0
        """Bytes read from the target."""
        self.bytes_up = 0
        """Bytes written to the target (``received`` also counts those still waiting)."""
        self._reported = (0, 0)
        self._credit_paused = False
        self._target_full = False
        self._unwritten: collections.deque[bytes] = collections.deque()
        self._end_pending = False
        self._held = 0  # stream bytes the target took whose credit is not yet returned

    def settle(self) -> None:
        """Report the bytes moved since the last call to the meter."""
        up, down = self.bytes_up, self.bytes_down
        self.meter.add(self.host, self.port, up - self._reported[0], down - self._reported[1])
        self._reported = (up, down)

    # -------------------------------------------------------- target → server

    def bind(self, transport: asyncio.Transport) -> None:
        super().bind(transport)
        self._credit_paused = self.mux.conn.credit(self.sid) == 0
        self._apply_reading()

    def data_received(self, data: bytes) -> None:
        self.bytes_down += len(data)
        super().data_received(data)
        self.bandwidth.down.spend(len(data))

    def _pause_reading(self) -> None:
        self._credit_paused = True
        self._apply_reading()

    def _resume_reading(self) -> None:
        self._credit_paused = False
        self._apply_reading()

    def _apply_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._credit_paused or self.bandwidth.down.blocked:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # -------------------------------------------------------- server → target

    def _deliver(self, transport: asyncio.Transport, data: bytes | memoryview) -> None:
        """Write through the upload throttle; credit goes back as the target takes bytes."""
        up = self.bandwidth.up
        piece = up.quantum or len(data)
        if not self._unwritten and not up.blocked and len(data) <= piece:
            self._write(data)
        else:  # in pieces the throttle lets through one by one; within our window: bounded
            self._unwritten.extend(bytes(data[i : i + piece]) for i in range(0, len(data), piece))
        self._write_out()

    def on_end(self) -> None:
        if self._unwritten:
            self._end_pending = True  # the target gets its FIN after the bytes before it
        else:
            super().on_end()

    def pause_writing(self) -> None:
        self._target_full = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._target_full = False
        super().resume_writing()
        self._release_credit()

    def _write(self, data: bytes | memoryview) -> None:
        assert self.transport is not None
        self.transport.write(data)
        self.bytes_up += len(data)
        self._held += len(data)
        self.bandwidth.up.spend(len(data))

    def _write_out(self) -> None:
        """Write what waited for the upload throttle, as far as it allows; then give credit."""
        while self._unwritten and not self.bandwidth.up.blocked and not self.done:
            transport = self.transport
            if transport is None or transport.is_closing():
                self._unwritten.clear()
                break
            self._write(self._unwritten.popleft())
        if self._end_pending and not self._unwritten and not self.done:
            self._end_pending = False
            super().on_end()
        self._release_credit()

    def _release_credit(self) -> None:
        if self._held and not self._target_full and not self.bandwidth.up.blocked:
            held, self._held = self._held, 0
            self.mux.conn.consumed(self.sid, held)
            self.mux.flush_soon()

    # ------------------------------------------------------------- throttle

    def throttle_changed(self) -> None:
        """A throttle blocked or opened: stop or restart both directions as they allow."""
        if not self.done:
            self._apply_reading()
            self._write_out()

"""Stream state and credit-based flow control for one agent⇄server connection.

:class:`Connection` is a pure state machine in the style of h11 and
websockets: feed it what the WebSocket delivered (:meth:`receive_bytes`,
:meth:`receive_text`), collect :meth:`events_received`, tell it what you want
to send, and write out :meth:`data_to_send`. The same class serves both ends;
``role`` decides who may open streams (only the server).

Guarantees:

* A sender never emits more DATA on a stream than the receiver granted
  (:meth:`send_data` refuses), so a receiver buffers at most one window per stream.
* Anything the peer sends that breaks the protocol raises :class:`ProtocolError`
  — never another exception — and the caller closes the connection.
* Frames produced in one batch are coalesced into as few WebSocket messages as
  ``max_message_size`` allows, because per-message cost dominates small frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from wire.control import decode_control, encode_control
from wire.errors import ProtocolError
from wire.events import (
    ControlReceived,
    CreditAdded,
    DataReceived,
    EndReceived,
    Event,
    StreamAccepted,
    StreamOpenRequested,
    StreamRejected,
    StreamReset,
)
from wire.frames import (
    HEADER_SIZE,
    Data,
    Fin,
    FrameType,
    Open,
    OpenFail,
    OpenOk,
    Reason,
    Reset,
    Window,
    decode_frames,
    encode_frame,
    header,
)
from wire.limits import MAX_WINDOW, Limits

MAX_REASON_BYTES = 512
"""Longest human-readable reason carried by OPEN_FAIL and RESET."""


class Role(Enum):
    SERVER = "server"
    AGENT = "agent"


@dataclass(slots=True)
class _Stream:
    opened: bool = False  # OPEN_OK sent/received
    send_credit: int = 0  # bytes we may still send
    recv_window: int = 0  # bytes the peer may still send us
    unacked: int = 0  # bytes consumed but not yet granted back
    window: int = 0  # the window we grant now: stream_window, growing to max_stream_window
    local_fin: bool = False
    remote_fin: bool = False


class Connection:
    """One side of the multiplexed protocol. Not thread-safe; drive it from one loop."""

    def __init__(self, role: Role, limits: Limits | None = None) -> None:
        self.role = role
        self.limits = limits or Limits()
        self._streams: dict[int, _Stream] = {}
        self._last_id = 0  # server: last id allocated; agent: highest id the server opened
        self._events: list[Event] = []
        self._messages: list[bytes | str] = []
        self._parts: list[bytes] = []
        self._parts_size = 0
        self._grant_threshold = max(1, self.limits.stream_window // 4)
        self._window_cap = max(self.limits.stream_window, self.limits.max_stream_window)

    # ------------------------------------------------------------------ input

    def receive_bytes(self, message: bytes) -> None:
        """Process one binary WebSocket message (one or more frames)."""
        for frame in decode_frames(message, self.limits.max_frame_payload):
            match frame:
                case Data(sid, data):
                    self._on_data(sid, data)
                case Window(sid, increment):
                    self._on_window(sid, increment)
                case Fin(sid):
                    self._on_fin(sid)
                case Reset(sid, reason, message_):
                    if self._known(sid, "RESET") is not None:
                        del self._streams[sid]
                        self._events.append(StreamReset(sid, reason, message_))
                case Open(sid, host, port, window):
                    self._on_open(sid, host, port, window)
                case OpenOk(sid, window, peer):
                    stream = self._opening(sid, "OPEN_OK")
                    if stream is not None:
                        stream.opened = True
                        stream.send_credit = window
                        stream.recv_window = stream.window = self.limits.stream_window
                        self._events.append(StreamAccepted(sid, peer))
                case OpenFail(sid, reason, message_):
                    if self._opening(sid, "OPEN_FAIL") is not None:
                        del self._streams[sid]
                        self._events.append(StreamRejected(sid, reason, message_))

    def receive_text(self, text: str) -> None:
        """Process one text WebSocket message (a JSON control message)."""
        self._events.append(ControlReceived(decode_control(text)))

    def events_received(self) -> list[Event]:
        """Events produced by input since the last call, in order."""
        events, self._events = self._events, []
        return events

    # ----------------------------------------------------------------- output

    def data_to_send(self) -> list[bytes | str]:
        """WebSocket messages to send, in order: ``bytes`` binary, ``str`` text."""
        self._seal()
        messages, self._messages = self._messages, []
        return messages

    def open_stream(self, host: str, port: int) -> int:
        """(server) Ask the agent to connect to ``host:port``; returns the new stream id."""
        if self.role is not Role.SERVER:
            raise RuntimeError("only the server opens streams")
        if not 0 < len(host.encode("utf-8")) <= self.limits.max_host_length:
            raise ValueError("host name empty or too long")
        frame = encode_frame(Open(self._last_id + 1, host, port, self.limits.stream_window))
        self._last_id += 1
        self._streams[self._last_id] = _Stream()  # the agent may send only after its OPEN_OK
        self._frame(frame)
        return self._last_id

    def accept_stream(self, stream_id: int, peer: str) -> None:
        """(agent) The target is connected; grant the server its first window."""
        stream = self._streams[stream_id]
        if stream.opened:
            raise RuntimeError("stream already accepted")
        stream.opened = True
        stream.recv_window = stream.window = self.limits.stream_window
        peer = self._clip(peer, reserve=4)
        self._frame(encode_frame(OpenOk(stream_id, self.limits.stream_window, peer)))

    def reject_stream(self, stream_id: int, reason: Reason, message: str) -> None:
        """(agent) The stream could not open; it is forgotten."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None and stream.opened:
            raise RuntimeError("cannot reject an accepted stream; reset it")
        self._frame(encode_frame(OpenFail(stream_id, reason, self._clip(message))))

    def credit(self, stream_id: int) -> int:
        """Bytes :meth:`send_data` accepts now on this stream (0 if it is gone)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_fin or not stream.opened:
            return 0
        return stream.send_credit

    def send_data(self, stream_id: int, data: bytes) -> None:
        """Send stream bytes; ``len(data)`` must not exceed :meth:`credit`."""
        stream = self._streams[stream_id]
        if stream.local_fin or not stream.opened:
            raise RuntimeError("data before OPEN_OK or after FIN")
        size = len(data)
        if size > stream.send_credit:
            raise ValueError(f"{size} bytes exceed the peer's credit of {stream.send_credit}")
        stream.send_credit -= size
        step = self.limits.max_frame_payload
        for start in range(0, size, step):
            chunk = data[start : start + step]
            self._frame(header(FrameType.DATA, stream_id, len(chunk)), chunk)

    def consumed(self, stream_id: int, size: int) -> None:
        """Report that ``size`` received bytes left our buffers; credit flows back in batches.

        Each batch also doubles the stream's window, up to ``max_stream_window``: a
        stream whose bytes keep leaving our buffers is moving, and a bigger window
        lets the sender keep several reads in flight instead of waiting a round
        trip per window. A stream whose reader stalls stops returning credit, so
        it holds at most its window.
        """
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_fin:
            return
        stream.unacked += size
        if stream.unacked >= self._grant_threshold:
            increment, stream.unacked = stream.unacked, 0
            growth = min(stream.window, self._window_cap - stream.window)
            stream.window += growth
            increment += growth
            stream.recv_window += increment
            self._frame(encode_frame(Window(stream_id, increment)))

    def send_fin(self, stream_id: int) -> None:
        """Half-close: we send no more data on this stream."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_fin:
            return
        if not stream.opened:
            raise RuntimeError("FIN before OPEN_OK: reset the stream instead")
        stream.local_fin = True
        self._frame(encode_frame(Fin(stream_id)))
        if stream.remote_fin:
            del self._streams[stream_id]

    def reset_stream(self, stream_id: int, reason: Reason, message: str = "") -> None:
        """Tear the stream down in both directions and forget it (no-op if already gone)."""
        if self._streams.pop(stream_id, None) is not None:
            self._frame(encode_frame(Reset(stream_id, reason, self._clip(message))))

    def send_control(self, message: dict[str, Any]) -> None:
        """Queue a control message (JSON text), ordered after frames queued before it."""
        self._seal()
        self._messages.append(encode_control(message))

    @property
    def stream_count(self) -> int:
        """Streams not yet fully closed or reset."""
        return len(self._streams)

    def has_stream(self, stream_id: int) -> bool:
        return stream_id in self._streams

    # -------------------------------------------------------------- internals

    def _clip(self, message: str, reserve: int = 1) -> str:
        """A text cut to fit one frame beside ``reserve`` bytes (bytes, never mid-character)."""
        limit = min(MAX_REASON_BYTES, self.limits.max_frame_payload - reserve)
        return message.encode("utf-8")[:limit].decode("utf-8", "ignore")

    def _frame(self, *parts: bytes) -> None:
        size = sum(len(p) for p in parts)
        if self._parts_size + size > self.limits.max_message_size:
            self._seal()
        self._parts.extend(parts)
        self._parts_size += size

    def _seal(self) -> None:
        if self._parts:
            self._messages.append(b"".join(self._parts))
            self._parts = []
            self._parts_size = 0

    def _never_opened(self, sid: int) -> bool:
        return sid > self._last_id

    def _known(self, sid: int, what: str) -> _Stream | None:
        """The live stream, None for one that closed (late frames are legal), or an error."""
        stream = self._streams.get(sid)
        if stream is None and self._never_opened(sid):
            raise ProtocolError(f"{what} for stream {sid}, which was never opened")
        return stream

    def _opening(self, sid: int, what: str) -> _Stream | None:
        if self.role is not Role.SERVER:
            raise ProtocolError(f"{what} sent to the agent")
        stream = self._known(sid, what)
        if stream is not None and stream.opened:
            raise ProtocolError(f"{what} for stream {sid}, which is already open")
        return stream

    def _on_open(self, sid: int, host: str, port: int, window: int) -> None:
        if self.role is not Role.AGENT:
            raise ProtocolError("OPEN sent to the server")
        if sid <= self._last_id:
            raise ProtocolError(f"OPEN reuses stream id {sid}")
        self._last_id = sid
        if len(host.encode("utf-8")) > self.limits.max_host_length:
            raise ProtocolError("OPEN host name too long")
        if len(self._streams) >= self.limits.max_streams:
            self._frame(
                encode_frame(OpenFail(sid, Reason.TOO_MANY_STREAMS, "agent stream limit reached"))
            )
            return
        self._streams[sid] = _Stream(send_credit=window)
        self._events.append(StreamOpenRequested(sid, host, port))

    def _on_data(self, sid: int, data: bytes | memoryview) -> None:
        stream = self._known(sid, "DATA")
        if stream is None:
            return
        if stream.remote_fin:
            raise ProtocolError(f"DATA after FIN on stream {sid}")
        if len(data) > stream.recv_window:
            raise ProtocolError(
                f"DATA of {len(data)} bytes exceeds the window of {stream.recv_window} "
                f"on stream {sid}"
            )
        stream.recv_window -= len(data)
        self._events.append(DataReceived(sid, data))

    def _on_window(self, sid: int, increment: int) -> None:
        stream = self._known(sid, "WINDOW")
        if stream is None:
            return
        if not stream.opened:
            raise ProtocolError(f"WINDOW before stream {sid} was accepted")
        stream.send_credit += increment
        if stream.send_credit > MAX_WINDOW:
            raise ProtocolError(f"WINDOW overflows 2^31-1 on stream {sid}")
        self._events.append(CreditAdded(sid, stream.send_credit))

    def _on_fin(self, sid: int) -> None:
        stream = self._known(sid, "FIN")
        if stream is None:
            return
        if not stream.opened:
            raise ProtocolError(f"FIN before stream {sid} was accepted")
        if stream.remote_fin:
            raise ProtocolError(f"second FIN on stream {sid}")
        stream.remote_fin = True
        self._events.append(EndReceived(sid))
        if stream.local_fin:
            del self._streams[sid]


__all__ = ["HEADER_SIZE", "Connection", "Role"]

"""Binary frames: the codec for everything that carries stream bytes.

A binary WebSocket message holds one or more frames back to back. Each frame is
a 9-byte header — type (u8), stream id (u32), payload length (u32), big-endian —
followed by the payload. Decoding a message yields frames or raises
:class:`~wire.errors.ProtocolError`; it never raises anything else, whatever
the input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from wire.errors import ProtocolError
from wire.limits import MAX_WINDOW

HEADER = struct.Struct("!BII")
HEADER_SIZE = HEADER.size
MAX_STREAM_ID = 2**32 - 1
_U32 = struct.Struct("!I")
_OPEN = struct.Struct("!IH")


class FrameType(IntEnum):
    OPEN = 1
    OPEN_OK = 2
    OPEN_FAIL = 3
    DATA = 4
    WINDOW = 5
    FIN = 6
    RESET = 7


class Reason(IntEnum):
    """Why a stream could not open (OPEN_FAIL) or was torn down (RESET)."""

    REFUSED = 1  # the target refused the TCP connection
    TIMEOUT = 2  # connecting to the target timed out
    DNS = 3  # the name did not resolve
    FORBIDDEN = 4  # the agent owner's guard refuses this destination
    TOO_MANY_STREAMS = 5  # the agent has no room for another stream
    UNREACHABLE = 6  # network or host unreachable, or another connect error
    PAUSED = 7  # the agent's owner paused sharing
    CANCELLED = 8  # the other end gave up on the stream (user went away)
    CONNECTION_LOST = 9  # the target connection broke mid-stream
    INTERNAL = 10  # a bug or resource failure on the sender's side

    @classmethod
    def parse(cls, value: int) -> Reason:
        """Unknown codes from a newer peer read as INTERNAL rather than failing."""
        try:
            return cls(value)
        except ValueError:
            return cls.INTERNAL


@dataclass(frozen=True, slots=True)
class Open:
    """Server asks the agent to connect to ``host:port`` and grants ``window`` bytes."""

    stream_id: int
    host: str
    port: int
    window: int


@dataclass(frozen=True, slots=True)
class OpenOk:
    """Agent connected; ``peer`` is the address it connected to; grants ``window`` bytes."""

    stream_id: int
    window: int
    peer: str


@dataclass(frozen=True, slots=True)
class OpenFail:
    stream_id: int
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Data:
    """Stream bytes. Decoded DATA holds a ``memoryview`` of the received message."""

    stream_id: int
    data: bytes | memoryview


@dataclass(frozen=True, slots=True)
class Window:
    """The receiver consumed bytes: the sender may send ``increment`` more."""

    stream_id: int
    increment: int


@dataclass(frozen=True, slots=True)
class Fin:
    """The sender will send no more DATA on this stream (TCP half-close)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class Reset:
    """The stream is gone in both directions."""

    stream_id: int
    reason: Reason
    message: str


Frame = Open | OpenOk | OpenFail | Data | Window | Fin | Reset


def encode_frame(frame: Frame) -> bytes:
    """Serialise one frame. Raises ``ValueError`` for a frame we must never send."""
    if not 1 <= frame.stream_id <= MAX_STREAM_ID:
        raise ValueError("stream id out of range")
    match frame:
        case Data(sid, data):
            if not data:
                raise ValueError("empty DATA frame")
            return header(FrameType.DATA, sid, len(data)) + data
        case Window(sid, increment):
            if not 1 <= increment <= MAX_WINDOW:
                raise ValueError("window increment out of range")
            return header(FrameType.WINDOW, sid, 4) + _U32.pack(increment)
        case Fin(sid):
            return header(FrameType.FIN, sid, 0)
        case Open(sid, host, port, window):
            if not host or not 1 <= port <= 65535 or not 1 <= window <= MAX_WINDOW:
                raise ValueError("empty host, or port or window out of range")
            payload = _OPEN.pack(window, port) + host.encode("utf-8")
            return header(FrameType.OPEN, sid, len(payload)) + payload
        case OpenOk(sid, window, peer):
            if not 1 <= window <= MAX_WINDOW:
                raise ValueError("window out of range")
            payload = _U32.pack(window) + peer.encode("utf-8")
            return header(FrameType.OPEN_OK, sid, len(payload)) + payload
        case OpenFail(sid, reason, message):
            payload = bytes([reason]) + message.encode("utf-8")
            return header(FrameType.OPEN_FAIL, sid, len(payload)) + payload
        case Reset(sid, reason, message):
            payload = bytes([reason]) + message.encode("utf-8")
            return header(FrameType.RESET, sid, len(payload)) + payload
    raise ValueError(f"not a frame: {frame!r}")


def header(frame_type: FrameType, stream_id: int, length: int) -> bytes:
    """The 9-byte header alone, for senders that write the payload separately."""
    return HEADER.pack(frame_type, stream_id, length)


def decode_frames(message: bytes, max_payload: int) -> list[Frame]:
    """Decode every frame of one binary WebSocket message.

    Raises :class:`ProtocolError` for truncation, unknown types, a payload over
    ``max_payload``, stream id 0, or a payload that does not fit its type.
    """
    frames: list[Frame] = []
    view = memoryview(message)
    end = len(message)
    offset = 0
    if end == 0:
        raise ProtocolError("empty binary message")
    while offset < end:
        if end - offset < HEADER_SIZE:
            raise ProtocolError("truncated frame header")
        ftype, sid, length = HEADER.unpack_from(message, offset)
        offset += HEADER_SIZE
        if length > max_payload:
            raise ProtocolError(f"frame payload of {length} bytes exceeds {max_payload}")
        if end - offset < length:
            raise ProtocolError("truncated frame payload")
        if sid == 0:
            raise ProtocolError("stream id 0 is reserved")
        payload = view[offset : offset + length]
        offset += length
        frames.append(_decode_payload(ftype, sid, payload))
    return frames


def _decode_payload(ftype: int, sid: int, payload: memoryview) -> Frame:
    if ftype == FrameType.DATA:
        if not payload:
            raise ProtocolError("empty DATA frame")
        return Data(sid, payload)  # a view into the message: no copy of stream bytes
    if ftype == FrameType.WINDOW:
        if len(payload) != 4:
            raise ProtocolError("WINDOW payload must be 4 bytes")
        (increment,) = _U32.unpack(payload)
        if not 1 <= increment <= MAX_WINDOW:
            raise ProtocolError(f"WINDOW increment {increment} out of range")
        return Window(sid, increment)
    if ftype == FrameType.FIN:
        if payload:
            raise ProtocolError("FIN carries no payload")
        return Fin(sid)
    if ftype == FrameType.OPEN:
        if len(payload) < _OPEN.size + 1:
            raise ProtocolError("OPEN payload too short")
        window, port = _OPEN.unpack_from(payload)
        if not 1 <= window <= MAX_WINDOW or port == 0:
            raise ProtocolError("OPEN window or port out of range")
        return Open(sid, _text(payload[_OPEN.size :]), port, window)
    if ftype == FrameType.OPEN_OK:
        if len(payload) < 4:
            raise ProtocolError("OPEN_OK payload too short")
        (window,) = _U32.unpack_from(payload)
        if not 1 <= window <= MAX_WINDOW:
            raise ProtocolError("OPEN_OK window out of range")
        return OpenOk(sid, window, _text(payload[4:]))
    if ftype in (FrameType.OPEN_FAIL, FrameType.RESET):
        if len(payload) < 1:
            raise ProtocolError("reason code missing")
        cls = OpenFail if ftype == FrameType.OPEN_FAIL else Reset
        return cls(sid, Reason.parse(payload[0]), _text(payload[1:]))
    raise ProtocolError(f"unknown frame type {ftype}")


def _text(raw: memoryview) -> str:
    try:
        return raw.tobytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("text field is not UTF-8") from None

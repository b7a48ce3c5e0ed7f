"""Events a :class:`~wire.connection.Connection` reports to the I/O layer above it."""

from dataclasses import dataclass
from typing import Any

from wire.frames import Reason


@dataclass(frozen=True, slots=True)
class StreamOpenRequested:
    """(agent side) The server wants ``host:port``; answer with accept or reject."""

    stream_id: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class StreamAccepted:
    """(server side) The agent connected the stream to ``peer``."""

    stream_id: int
    peer: str


@dataclass(frozen=True, slots=True)
class StreamRejected:
    """(server side) The agent could not open the stream."""

    stream_id: int
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Stream bytes; call ``Connection.consumed`` once they left our buffers."""

    stream_id: int
    data: bytes | memoryview


@dataclass(frozen=True, slots=True)
class CreditAdded:
    """The peer granted more send credit; ``credit`` is the total available now."""

    stream_id: int
    credit: int


@dataclass(frozen=True, slots=True)
class EndReceived:
    """The peer half-closed the stream: no more data will come."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer tore the stream down; it is forgotten."""

    stream_id: int
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class ControlReceived:
    message: dict[str, Any]


Event = (
    StreamOpenRequested
    | StreamAccepted
    | StreamRejected
    | DataReceived
    | CreditAdded
    | EndReceived
    | StreamReset
    | ControlReceived
)

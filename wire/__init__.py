"""The agent⇄server protocol, sans-IO: bytes and text in, events out, bytes and text to send.

Nothing here touches a socket, an event loop, Django or Qt; the server's agent
endpoint and the agent engine drive the same :class:`Connection`.
See ``docs/protocol.md`` for the specification.
"""

from wire.connection import Connection, Role
from wire.control import PROTOCOL_VERSION, decode_control, encode_control
from wire.errors import CloseCode, ProtocolError
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
    Frame,
    FrameType,
    Open,
    OpenFail,
    OpenOk,
    Reason,
    Reset,
    Window,
    decode_frames,
    encode_frame,
)
from wire.limits import Limits

__all__ = [
    "HEADER_SIZE",
    "PROTOCOL_VERSION",
    "CloseCode",
    "Connection",
    "ControlReceived",
    "CreditAdded",
    "Data",
    "DataReceived",
    "EndReceived",
    "Event",
    "Fin",
    "Frame",
    "FrameType",
    "Limits",
    "Open",
    "OpenFail",
    "OpenOk",
    "ProtocolError",
    "Reason",
    "Reset",
    "Role",
    "StreamAccepted",
    "StreamOpenRequested",
    "StreamRejected",
    "StreamReset",
    "Window",
    "decode_control",
    "decode_frames",
    "encode_control",
    "encode_frame",
]

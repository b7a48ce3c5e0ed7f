"""Control messages: JSON objects in text WebSocket messages.

Rare and small (HELLO, WELCOME, PAUSE, RESUME, STATS, …), so readability wins
over compactness. Every message is an object with a string ``type``; unknown
types are delivered to the application, which ignores what it does not know
(forward compatibility), while malformed JSON is a protocol error. The types
(hello, welcome, pause, resume, stats) are listed in ``docs/protocol.md``.
"""

import json
from typing import Any

from wire.errors import ProtocolError

PROTOCOL_VERSION = 1
MAX_CONTROL_SIZE = 64 * 1024
"""Longest control message accepted, in characters."""


def encode_control(message: dict[str, Any]) -> str:
    """Serialise a control message; ``type`` is required."""
    if not isinstance(message.get("type"), str):
        raise ValueError("control message needs a string 'type'")
    return json.dumps(message, separators=(",", ":"))


def decode_control(text: str) -> dict[str, Any]:
    """Parse a control message, or raise :class:`ProtocolError`."""
    if len(text) > MAX_CONTROL_SIZE:
        raise ProtocolError(f"control message over {MAX_CONTROL_SIZE} characters")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("control message is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("control message must be an object with a string 'type'")
    return message

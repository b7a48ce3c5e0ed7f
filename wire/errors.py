"""The one exception the protocol raises, and the WebSocket close codes it maps to."""

from enum import IntEnum


class CloseCode(IntEnum):
    """WebSocket close codes used between server and agent (RFC 6455 §7.4 plus private 4xxx)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down, agent quitting
    PROTOCOL_ERROR = 1002  # malformed or illegal frame
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    UNAUTHORIZED = 4001  # credential refused after the handshake (e.g. revoked while online)
    DUPLICATE = 4002  # the same agent connected again; this older connection is replaced
    BAD_HELLO = 4003  # missing/invalid HELLO or unsupported protocol version


class ProtocolError(Exception):
    """The peer broke the protocol; the connection must be closed with ``close_code``.

    Raised only by :mod:`wire` for input the peer sent, never for local misuse
    (that is a ``ValueError``/``RuntimeError`` — a bug in our own code).
    """

    def __init__(self, message: str, close_code: CloseCode = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.close_code = close_code

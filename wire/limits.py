"""Every limit of the protocol, named once with its default.

Both peers enforce the limits they receive under; the server tells the agent
its values in WELCOME so a mismatch is visible in one place.
"""

from dataclasses import dataclass

KIB = 1024
MAX_WINDOW = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """Protocol limits of one connection.

    ``stream_window``: bytes a receiver grants per stream before any WINDOW update.
    ``max_stream_window``: what that grant grows to while the stream keeps flowing (the
    most one stream may have in flight in each direction): each WINDOW update doubles
    the stream's window until it reaches this. A window of 256 KiB holds one socket read,
    so a bulk stream would wait a round trip per read; the initial grant stays small so
    a stream that moves little never holds more.
    ``max_frame_payload``: largest payload one frame may carry; larger is a protocol error.
    ``max_message_size``: largest WebSocket message the sender builds by coalescing frames
    (must stay under the WebSocket layer's own message limit).
    ``max_streams``: streams open at once on one connection; OPEN beyond it is refused.
    ``max_host_length``: longest destination name in OPEN (DNS allows 253).
    """

    stream_window: int = 256 * KIB
    max_stream_window: int = 2048 * KIB
    max_frame_payload: int = 256 * KIB
    max_message_size: int = 1024 * KIB
    max_streams: int = 1024
    max_host_length: int = 255

    def __post_init__(self) -> None:
        if not 1 <= self.stream_window <= MAX_WINDOW:
            raise ValueError(f"stream_window must be 1..{MAX_WINDOW}")
        if not 1 <= self.max_stream_window <= MAX_WINDOW:
            raise ValueError(f"max_stream_window must be 1..{MAX_WINDOW}")
        if self.max_frame_payload < 1024:
            raise ValueError("max_frame_payload must be at least 1 KiB")
        if self.max_message_size < self.max_frame_payload + 9:
            raise ValueError("max_message_size must hold at least one full frame")
        if self.max_streams < 1:
            raise ValueError("max_streams must be positive")

"""A socket joined to a stream: a socket error while relaying ends the stream, not the caller."""

from __future__ import annotations

import asyncio
from typing import Any

import wire
from tunnel import Mux, SocketLink


class BrokenTransport(asyncio.Transport):
    """A transport whose socket is already gone (shutdown fails with ENOTCONN)."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        raise OSError(107, "Transport endpoint is not connected")

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass


def test_it_aborts_the_socket_when_passing_on_a_fin_fails() -> None:
    async def scenario() -> None:
        async def send(message: bytes | str) -> None:
            pass

        mux = Mux(wire.Connection(wire.Role.SERVER), send)
        sid = mux.conn.open_stream("example.com", 443)
        mux.feed_bytes(wire.encode_frame(wire.OpenOk(sid, 65536, "192.0.2.1")))
        link = SocketLink(mux, sid)
        transport = BrokenTransport()
        link.bind(transport)
        link.on_end()  # the peer's FIN; shutdown() fails
        assert transport.aborted

    asyncio.run(scenario())

"""The least a Python proxy can do per tunnel: a yardstick for Exitpool's CPU per tunnel.

One process on uvloop (as Exitpool's server and agent run), CONNECT only:
read the head, connect to the target, answer ``200`` in one write, then
relay raw bytes both ways with flow control and half-close. No credentials,
no accounting, no multiplexing, no guard, no second process. Whatever this
costs per tunnel, any Python proxy pays at least; Exitpool pays it and more
twice over (the server accepts and parses, the agent connects, and both
frame every byte into the WebSocket between them), which is what
``benchmarks/README.md`` uses it for. It is a benchmark tool, never a product.

    python -m benchmarks.floor_proxy --port PORT
"""

from __future__ import annotations

import argparse
import asyncio

MAX_HEAD = 65536
CONNECT_OK = b"HTTP/1.1 200 Connection established\r\n\r\n"


class Half(asyncio.Protocol):
    """One socket of a tunnel; ``peer`` is the other one's protocol."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Half | None = None
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Nagle is already off: the loop disables it on what it accepts and connects.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.peer.transport is not None
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.eof:
            return False
        peer.transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class Client(Half):
    """The user's side: reads the CONNECT head, then relays."""

    tasks: set[asyncio.Task[None]] = set()

    def __init__(self) -> None:
        super().__init__()
        self.head = b""

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            super().data_received(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > MAX_HEAD:
                self._refuse(b"431 Request Header Fields Too Large")
            return
        assert self.transport is not None
        self.transport.pause_reading()
        line = self.head[: self.head.find(b"\r\n")].split(b" ")
        rest = self.head[end + 4 :]
        if len(line) != 3 or line[0] != b"CONNECT" or b":" not in line[1]:
            self._refuse(b"400 Bad Request")
            return
        host, _, port = line[1].decode("latin-1").rpartition(":")
        task = asyncio.get_running_loop().create_task(self._connect(host, int(port), rest))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, host: str, port: int, rest: bytes) -> None:
        assert self.transport is not None
        upstream = Half()
        try:
            await asyncio.get_running_loop().create_connection(lambda: upstream, host, port)
        except OSError:
            self._refuse(b"502 Bad Gateway")
            return
        if self.transport.is_closing():
            assert upstream.transport is not None
            upstream.transport.close()
            return
        self.peer, upstream.peer = upstream, self
        self.transport.write(CONNECT_OK)
        if rest:
            assert upstream.transport is not None
            upstream.transport.write(rest)
        self.transport.resume_reading()

    def _refuse(self, status: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        self.transport.close()


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        Client, "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port))
    else:
        uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()

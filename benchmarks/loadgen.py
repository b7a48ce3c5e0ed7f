"""Load generators for what wrk cannot do: CONNECT per request, bulk tunnels, open tunnels.

Runs as its own process (so its CPU is visible and can be pinned) and prints
one JSON object on its last line of stdout.

* ``connect``: ``--concurrency`` workers each loop *connect, CONNECT, GET
  /1k, read the whole response, close* for ``--duration`` seconds. Reports
  tunnels/s, failures (anything but a complete 200 response), and time to
  first byte (connect start to the response's first byte) p50/p99.
  Plain asyncio protocols, no streams: one loop iteration per event.
* ``bulk``: one tunnel, a download of ``--size`` bytes (``GET /bulk``) or an
  upload (``POST /upload`` to the sink), with blocking sockets and
  ``recv_into`` a reused buffer; reports MB/s.
* ``tunnels``: ``--count`` tunnels opened and kept open, each doing a
  ``GET /1k`` every ``--interval`` seconds for ``--hold`` seconds. Prints
  ``ready`` once all are open, so the caller can read memory meanwhile.

Without ``--proxy`` the client talks to the target directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time

HOST = "127.0.0.1"


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Exchange(asyncio.Protocol):
    """One connection: optional CONNECT, then requests; completes a future per response."""

    def __init__(self, connect: bytes | None) -> None:
        self.connect = connect
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.in_tunnel = connect is None
        self.body_left = -1
        self.first_byte = 0.0
        self.waiter: asyncio.Future[bool] | None = None
        self.pending = b""
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.connect is not None:
            transport.write(self.connect)

    def request(self, data: bytes) -> asyncio.Future[bool]:
        """Send a request (or queue it behind the CONNECT answer); resolves True on a 200."""
        self.waiter = asyncio.get_running_loop().create_future()
        self.pending = data
        self.first_byte = 0.0
        if self.in_tunnel:
            assert self.transport is not None
            self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if not self.in_tunnel:
            self.buffer += data
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
                self._settle(False)
                return
            self.in_tunnel = True
            self.buffer = b""
            assert self.transport is not None
            self.transport.write(self.pending)
            if not rest:
                return
            data = rest
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        if self.body_left < 0:
            self.buffer += data
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self.buffer = b""
            if not head.startswith(b"HTTP/1.1 200"):
                self._settle(False)
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            self.body_left = length - len(rest)
        else:
            self.body_left -= len(data)
        if self.body_left <= 0:
            self.body_left = -1
            self._settle(True)

    def _settle(self, ok: bool) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(False)
        if not self.closed.done():
            self.closed.set_result(None)


def tunnel_plan(args: argparse.Namespace) -> tuple[tuple[str, int], bytes | None, bytes]:
    """Where to connect, the CONNECT to send first (None: straight to the target), the request."""
    target = f"{HOST}:{args.target_port}"
    request = f"GET /1k HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
    if not args.proxy_port:
        return (HOST, args.target_port), None, request
    auth = f"Proxy-Authorization: {args.auth}\r\n" if args.auth else ""
    connect = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode()
    return (HOST, args.proxy_port), connect, request


async def run_connect(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    address, connect, request = tunnel_plan(args)
    ttfb: list[float] = []
    done = 0
    failures = 0
    errors: dict[str, int] = {}
    stop_at = loop.time() + args.duration

    async def worker() -> None:
        nonlocal done, failures
        while loop.time() < stop_at and (not args.count or done + failures < args.count):
            started = time.perf_counter()
            ok = False
            try:
                transport, exchange = await asyncio.wait_for(
                    loop.create_connection(lambda: Exchange(connect), *address), 10
                )
                ok = await asyncio.wait_for(exchange.request(request), 10)
                transport.close()
                if ok:
                    ttfb.append(exchange.first_byte - started)
                else:
                    errors["bad-or-cut-response"] = errors.get("bad-or-cut-response", 0) + 1
            except (OSError, TimeoutError) as exc:
                name = exc.__class__.__name__
                errors[name] = errors.get(name, 0) + 1
            if ok:
                done += 1
            else:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "ok": done,
        "failures": failures,
        "errors": errors,
        "seconds": elapsed,
        "per_second": done / elapsed,
        "ttfb_p50_ms": percentile(ttfb, 0.5) * 1000,
        "ttfb_p99_ms": percentile(ttfb, 0.99) * 1000,
    }


def open_tunnel(args: argparse.Namespace) -> socket.socket:
    address, connect, _request = tunnel_plan(args)
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if connect is not None:
        sock.sendall(connect)
        head = read_head(sock)[0]
        if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
            raise ConnectionError(f"CONNECT refused: {head[:80]!r}")
    return sock


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the end of the head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def run_bulk(args: argparse.Namespace) -> dict[str, object]:
    """One tunnel; returns MB/s from sending the request to the last byte (either way)."""
    with open_tunnel(args) as sock:
        view = memoryview(bytearray(1 << 20))
        target = f"{HOST}:{args.target_port}"
        started = time.perf_counter()
        if args.direction == "down":
            sock.sendall(f"GET /bulk HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head, rest = read_head(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            received = len(rest)
            while received < args.size:
                n = sock.recv_into(view)
                if not n:
                    raise ConnectionError(f"closed after {received} of {args.size} bytes")
                received += n
        else:
            request = f"POST /upload HTTP/1.1\r\nHost: {target}\r\nContent-Length: {args.size}\r\n"
            sock.sendall(request.encode() + b"\r\n")
            left = args.size
            while left > 0:
                left -= sock.send(view[: min(left, len(view))])
            head, _ = read_head(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
        elapsed = time.perf_counter() - started
    return {"bytes": args.size, "seconds": elapsed, "mb_per_s": args.size / 1e6 / elapsed}


async def run_tunnels(args: argparse.Namespace) -> dict[str, object]:
    """Many open tunnels, each moving a little data now and then."""
    loop = asyncio.get_running_loop()
    address, connect, request = tunnel_plan(args)
    exchanges: list[Exchange] = []
    failures = 0
    semaphore = asyncio.Semaphore(64)

    async def open_one() -> None:
        nonlocal failures
        async with semaphore:
            try:
                _, exchange = await loop.create_connection(lambda: Exchange(connect), *address)
                if await asyncio.wait_for(exchange.request(request), 30):
                    exchanges.append(exchange)
                    return
            except (OSError, TimeoutError):
                pass
            failures += 1

    await asyncio.gather(*(open_one() for _ in range(args.count)))
    print("ready", len(exchanges), flush=True)
    requests = 0

    async def keep_busy(exchange: Exchange) -> None:
        nonlocal requests, failures
        await asyncio.sleep(random.uniform(0, args.interval))
        while loop.time() < stop_at:
            if not await asyncio.wait_for(exchange.request(request), 30):
                failures += 1
                return
            requests += 1
            await asyncio.sleep(args.interval)

    stop_at = loop.time() + args.hold
    await asyncio.gather(*(keep_busy(e) for e in exchanges), return_exceptions=True)
    for exchange in exchanges:
        if exchange.transport is not None:
            exchange.transport.close()
    return {"open": len(exchanges), "failures": failures, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("connect", "bulk", "tunnels"))
    parser.add_argument("--proxy-port", type=int, default=0)
    parser.add_argument("--auth", default="")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=200_000_000)
    parser.add_argument("--direction", choices=("down", "up"), default="down")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--hold", type=float, default=10.0)
    args = parser.parse_args()
    if args.mode == "connect":
        result = asyncio.run(run_connect(args))
    elif args.mode == "bulk":
        result = run_bulk(args)
    else:
        result = asyncio.run(run_tunnels(args))
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Thousands of idle agents in one process: a light client of the real protocol.

Each simulated agent opens ``/ws/agent`` with the enrollment key (the real
handshake: HTTP upgrade, then a masked text HELLO), reads WELCOME, answers
the server's pings with pongs, and pings the server every
``--ping-interval`` seconds like the real agent (docs/protocol.md §7). No
aiohttp: a bare asyncio protocol per agent keeps 10,000 of them in one
process cheap.

Measured per agent: the gap between the server's pings (and from WELCOME to
the first one), the server's pong time to our pings, and whether the server
dropped us. Prints ``ready N`` once all are online, then a JSON summary.

    python -m benchmarks.simagents --url ws://127.0.0.1:P/ws/agent --key KEY --count 10000 --hold 60
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import struct
import time
from urllib.parse import urlsplit

HANDSHAKE_CONCURRENCY = 100
PONG_LATE_S = 5.0
"""A pong later than this (or none) counts as a late heartbeat: the real agent waits 20 s."""
PING_GAP_SLACK_S = 5.0
"""A server ping this much later than its interval counts as late."""


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 §5.3); payloads here are small."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class SimAgent(asyncio.Protocol):
    def __init__(self, host: str, path: str, key: str, name: str, stats: Stats) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\nX-Exitpool-Enrollment-Key: {key}\r\n\r\n"
        ).encode()
        self.name = name
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.welcomed = asyncio.get_running_loop().create_future()
        self.last_server_ping = 0.0
        self.ping_sent: dict[bytes, float] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(f"handshake refused: {head[:40]!r}")
                return
            self.upgraded = True
            self.buffer = rest
            hello = {
                "type": "hello",
                "version": 1,
                "name": self.name,
                "os": "simulated",
                "agent_version": "bench",
                "max_streams": 256,
                "paused": False,
            }
            self._send(1, json.dumps(hello).encode())
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                (length,) = struct.unpack_from("!H", self.buffer, 2)
                offset = 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                (length,) = struct.unpack_from("!Q", self.buffer, 2)
                offset = 10
            if len(self.buffer) < offset + length:
                return
            payload = self.buffer[offset : offset + length]
            self.buffer = self.buffer[offset + length :]
            self._on_frame(first & 0x0F, payload)

    def _on_frame(self, opcode: int, payload: bytes) -> None:
        now = time.monotonic()
        if opcode == 1 and not self.welcomed.done():
            message = json.loads(payload)
            if message.get("type") == "welcome":
                self.last_server_ping = now
                self.welcomed.set_result(None)
        elif opcode == 9:  # the server's heartbeat
            self.stats.ping_gaps.append(now - self.last_server_ping)
            self.last_server_ping = now
            self._send(10, payload)
        elif opcode == 10:
            sent = self.ping_sent.pop(payload, None)
            if sent is not None:
                self.stats.pongs.append(now - sent)
        elif opcode == 8:
            self._fail("closed by the server")

    def ping(self) -> None:
        token = os.urandom(4)
        self.ping_sent[token] = time.monotonic()
        self._send(9, token)

    def late_pings(self) -> int:
        now = time.monotonic()
        return sum(1 for sent in self.ping_sent.values() if now - sent > PONG_LATE_S)

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(opcode, payload))

    def _fail(self, why: str) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(why))
        self.connection_lost(None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            if self.welcomed.done() and self.welcomed.exception() is None:
                self.stats.dropped += 1
            elif not self.welcomed.done():
                self.welcomed.set_exception(ConnectionError("connection lost"))


class Stats:
    def __init__(self) -> None:
        self.ping_gaps: list[float] = []
        self.pongs: list[float] = []
        self.dropped = 0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stats = Stats()
    agents: list[SimAgent] = []
    failed = 0
    gate = asyncio.Semaphore(HANDSHAKE_CONCURRENCY)

    async def connect(number: int) -> None:
        nonlocal failed
        async with gate:
            try:
                _, agent = await loop.create_connection(
                    lambda: SimAgent(
                        parts.netloc, parts.path, args.key, f"sim-{number:05d}", stats
                    ),
                    host,
                    port,
                )
                await asyncio.wait_for(agent.welcomed, 60)
                agents.append(agent)
            except (OSError, TimeoutError, ConnectionError):
                failed += 1

    started = time.monotonic()
    await asyncio.gather(*(connect(n) for n in range(args.count)))
    ramp = time.monotonic() - started
    print("ready", len(agents), flush=True)

    async def heartbeat(agent: SimAgent) -> None:
        await asyncio.sleep(random.uniform(0, args.ping_interval))
        while not agent.closed:
            agent.ping()
            await asyncio.sleep(args.ping_interval)

    tasks = [loop.create_task(heartbeat(agent)) for agent in agents]
    await asyncio.sleep(args.hold)
    late_pongs = sum(agent.late_pings() for agent in agents if not agent.closed)
    now = time.monotonic()
    silent = sum(
        1
        for agent in agents
        if not agent.closed and now - agent.last_server_ping > args.server_ping + PING_GAP_SLACK_S
    )
    late_gaps = sum(1 for gap in stats.ping_gaps if gap > args.server_ping + PING_GAP_SLACK_S)
    for task in tasks:
        task.cancel()
    for agent in agents:
        if agent.transport is not None:
            agent.transport.abort()
    return {
        "agents": float(len(agents)),
        "failed": float(failed),
        "ramp_s": ramp,
        "dropped": float(stats.dropped),
        "server_pings": float(len(stats.ping_gaps)),
        "ping_gap_max_s": max(stats.ping_gaps, default=float("nan")),
        "pongs": float(len(stats.pongs)),
        "pong_p50_ms": percentile(stats.pongs, 0.5) * 1000,
        "pong_p99_ms": percentile(stats.pongs, 0.99) * 1000,
        "late": float(late_pongs + late_gaps + silent + stats.dropped),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--ping-interval", type=float, default=20.0, help="our pings (agent's)")
    parser.add_argument("--server-ping", type=float, default=20.0, help="the server's interval")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()

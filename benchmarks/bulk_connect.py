"""A 100 MB download through a CONNECT tunnel, next to the same download direct.

Starts a real server, one headless agent and a target on loopback, then
downloads ``--size`` bytes ``--runs`` times each way with a plain-socket client
(so the client is not the bottleneck) and prints medians and the ratio.
Everything shares this machine's cores: read the ratio, not the absolute number.

    .venv/bin/python -m benchmarks.bulk_connect [--size 100000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import socket
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.processes import AgentProcess, ServerProcess
from tests.support.target import TargetProcess

USER, PASSWORD = "bench", "bench-pw"


def download(sock: socket.socket, host: str, port: int, size: int) -> float:
    """GET /bytes/size on an open connection; returns seconds from request to last byte."""
    started = time.perf_counter()
    sock.sendall(f"GET /bytes/{size} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    received = len(rest)
    view = bytearray(1 << 20)
    while received < size:
        n = sock.recv_into(view)
        if not n:
            raise ConnectionError(f"connection closed after {received} of {size} bytes")
        received += n
    return time.perf_counter() - started


def via_proxy(proxy_port: int, host: str, port: int, size: int) -> float:
    with socket.create_connection(("127.0.0.1", proxy_port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        sock.sendall(
            f"CONNECT {host}:{port} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        return download(sock, host, port, size)


def direct(host: str, port: int, size: int) -> float:
    with socket.create_connection((host, port)) as sock:
        return download(sock, host, port, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="exitpool-bench-"))
    server = ServerProcess(tmp)
    server.cli("proxyuser", USER, "--password", PASSWORD)
    key = server.enrollment_key()
    server.start()
    agent = AgentProcess(tmp, server, key, "bench-agent", "127.0.0.2").start()
    try:
        with TargetProcess(host="127.0.0.3") as target:
            via_proxy(server.proxy_port, target.host, target.port, 1_000_000)  # warm-up
            results = {"direct": [], "exitpool CONNECT": []}
            for _ in range(args.runs):
                results["direct"].append(direct(target.host, target.port, args.size))
                results["exitpool CONNECT"].append(
                    via_proxy(server.proxy_port, target.host, target.port, args.size)
                )
    finally:
        agent.terminate()
        server.terminate()
    mb = args.size / 1e6
    medians = {name: mb / statistics.median(times) for name, times in results.items()}
    print(f"{args.size / 1e6:.0f} MB download, median of {args.runs} runs:")
    for name, rate in medians.items():
        print(f"  {name:<18} {rate:8.0f} MB/s")
    print(f"  ratio exitpool/direct: {medians['exitpool CONNECT'] / medians['direct']:.2f}")


if __name__ == "__main__":
    main()

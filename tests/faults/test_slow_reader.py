"""A slow reader: a user reads a 1 GB download at 1 byte per second.

Expected behaviour: the credit windows carry the user's backpressure back to the target —
after a first burst (one stream window plus what the kernels buffer) the target can send
no more — so neither the server nor the agent grows by more than the stream window plus a
constant while it lasts; meanwhile other downloads through the same agent keep their full
speed. The target serves the gigabyte lazily, so nothing close to it ever exists.

Memory is the resident set size from /proc/PID/status, sampled every 0.1 s over ~10 s. The
reference is the peak of the same processes while they carry the same fast downloads
without the slow reader, so what is measured is the slow reader's own cost.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import wire
from tests.faults.conftest import PASSWORD, USER, proxies
from tests.support.memory import RssSampler
from tests.support.processes import AgentProcess, ServerProcess
from tests.support.raw_proxy import basic_auth
from tests.support.target import TargetProcess

GIGABYTE = 1024**3
STREAM_WINDOW = wire.Limits().max_stream_window
"""The most one stream may have in flight: its window grows to this while it flows (the
server's and the agent's default); a stalled reader returns no credit, so it stops there."""
RSS_SLACK = 8 * 1024 * 1024
"""The constant beside one stream window: allocator noise of a process moving 100 MB/s."""
SLOW_SECONDS = 10
FAST_SIZE = 50 * 1024 * 1024
MIN_SPEED_SHARE = 1 / 3
"""The other downloads keep at least this share of the speed they had without the slow
reader (they share two cores with it, so a generous bound; a stalled pipe would be 0)."""
TARGET_BURST_LIMIT = 64 * 1024 * 1024
"""What the target may push before the stall: a window plus every kernel buffer on the way
(up to 32 MB each here); without backpressure it would be gigabytes in 10 s."""


@pytest.fixture(scope="module")
def agent(start_agent: Callable[[str, str], AgentProcess]) -> AgentProcess:
    return start_agent("pc-reader", "127.0.0.2")


@pytest.fixture(scope="module")
def slow_target() -> Iterator[TargetProcess]:
    """A target of its own, so its one connection can be found and measured."""
    with TargetProcess(host="127.0.0.3") as process:
        yield process


def fast_downloads(server: ServerProcess, target: TargetProcess, seconds: float) -> float:
    """Download FAST_SIZE through pc-reader again and again for ``seconds``; bytes/s."""
    route = proxies(server, f"{USER}-agent-pc-reader")
    moved, started = 0, time.monotonic()
    for _ in range(100):  # bounded; ``seconds`` ends it long before
        url = f"{target.url}/bytes/{FAST_SIZE}"
        with requests.get(url, proxies=route, stream=True, timeout=30) as got:
            assert got.status_code == 200
            for chunk in got.iter_content(1024 * 1024):
                moved += len(chunk)
        if time.monotonic() - started >= seconds:
            break
    assert moved % FAST_SIZE == 0, "a fast download came back short"
    return moved / (time.monotonic() - started)


def bytes_acked_from(target: TargetProcess) -> int:
    """How many bytes the target's connection has delivered so far (tcp_info, via ``ss``)."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", "src", f"{target.host}:{target.port}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    acked = [int(n) for n in re.findall(r"bytes_acked:(\d+)", out)]
    assert len(acked) == 1, out
    return acked[0]


def test_a_one_byte_per_second_reader_costs_one_window_and_slows_no_one(
    server: ServerProcess,
    agent: AgentProcess,
    target: TargetProcess,
    slow_target: TargetProcess,
) -> None:
    assert server.proc is not None and agent.proc is not None
    pids = [server.proc.pid, agent.proc.pid]
    fast_downloads(server, target, 1)  # warm up
    with RssSampler(pids) as alone:
        speed_alone = fast_downloads(server, target, 2)

    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    slow.settimeout(10)
    slow.connect(("127.0.0.1", server.proxy_port))
    with slow:
        auth = basic_auth(f"{USER}-agent-pc-reader", PASSWORD)
        slow.sendall(
            f"GET {slow_target.url}/bytes/{GIGABYTE} HTTP/1.1\r\nHost: {slow_target.host}\r\n"
            f"Proxy-Authorization: {auth}\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += slow.recv(1)
        assert head.startswith(b"HTTP/1.1 200") and f"{GIGABYTE}".encode() in head
        with RssSampler(pids) as sampler, ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            burst, fast = 0, None
            for second in range(SLOW_SECONDS):  # one byte a second, on the clock
                assert len(slow.recv(1)) == 1
                if second == 2:  # the burst is over: everything from now on is the stall
                    burst = bytes_acked_from(slow_target)
                    fast = pool.submit(fast_downloads, server, target, SLOW_SECONDS - 5)
                time.sleep(max(0.0, started + second + 1 - time.monotonic()))
            final = bytes_acked_from(slow_target)
            assert fast is not None
            speed_with_slow = fast.result(timeout=60)

    assert final < TARGET_BURST_LIMIT, f"the target pushed {final} bytes to a stalled reader"
    assert final - burst < STREAM_WINDOW, "the target kept sending to a stalled reader"
    for pid, name in zip(pids, ("server", "agent"), strict=True):
        growth = sampler.peak[pid] - alone.peak[pid]
        assert growth < STREAM_WINDOW + RSS_SLACK, f"{name} grew {growth / 2**20:.1f} MiB"
    assert speed_with_slow >= MIN_SPEED_SHARE * speed_alone, (
        f"{speed_with_slow / 1e6:.0f} MB/s beside the slow reader, {speed_alone / 1e6:.0f} alone"
    )

"""(e) Many idle agents on one server: its memory and whether heartbeats stay on time.

Starts its own ``exitpool-server run`` (no real agents), then
:mod:`benchmarks.simagents` in another process; samples the server's RSS
while all agents are online and merges it into the simulator's summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import Procs, rss_bytes
from benchmarks.setups import start_exitpool_server

MIB = 1024 * 1024
SERVER_PING_INTERVAL = 20.0
"""The server's default ``ws_ping_interval``; the simulator checks pings against it."""


@dataclass(frozen=True)
class IdlePlan:
    count: int
    hold: float
    cpus: str | None


def idle_agents(plan: IdlePlan, procs: Procs, work: Path) -> dict[str, float]:
    server = start_exitpool_server(procs, work, "idle")
    command = [
        sys.executable,
        "-m",
        "benchmarks.simagents",
        "--url",
        server.ws_url,
        "--key",
        server.key,
        "--count",
        str(plan.count),
        "--hold",
        f"{plan.hold:g}",
        "--server-ping",
        f"{SERVER_PING_INTERVAL:g}",
    ]
    if plan.cpus:
        command = ["taskset", "-c", plan.cpus, *command]
    idle_rss = rss_bytes(server.pid)
    peak = idle_rss
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as sim:
        try:
            assert sim.stdout is not None
            ready = sim.stdout.readline()
            if not ready.startswith("ready"):
                raise RuntimeError(f"simulated agents did not come up: {ready!r}")
            while sim.poll() is None:
                peak = max(peak, rss_bytes(server.pid))
                time.sleep(0.5)
            result: dict[str, float] = json.loads(sim.stdout.read().strip().splitlines()[-1])
        finally:
            sim.kill()  # a no-op once it has exited; on an interrupt it must not outlive us
    procs.stop_all()
    result["server_rss_mb"] = peak / MIB
    result["server_idle_rss_mb"] = idle_rss / MIB
    return result

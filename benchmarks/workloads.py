"""The workloads, each measured once against one setup; :mod:`benchmarks.run` repeats them.

Every function returns a flat ``{metric: number}`` dict. The load generator
runs as a child process (wrk, ``connect_load`` or :mod:`benchmarks.loadgen`),
optionally pinned with ``taskset``, and its CPU use is reported as
``client_cpu`` (CPU seconds per second) so a reader can see it was not the
bottleneck.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procs import rss_bytes
from benchmarks.setups import HOST, Setup, Targets

HERE = Path(__file__).resolve().parent
CONNECT_LOAD = HERE / ".build" / "connect_load"
SMALL_CONCURRENCY = 64
CONNECT_CONCURRENCY = 64
OPEN_TUNNELS = 1000
MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """How long and how big each workload is (``--quick`` shrinks it)."""

    seconds: float
    bulk_size: int
    tunnels_hold: float
    cpus: str | None
    """Where the load generator runs (``taskset -c``), or None for anywhere."""


def build_connect_load() -> Path:
    """Compile ``connect_load.c`` (gcc) unless the binary is newer than the source."""
    source = HERE / "connect_load.c"
    if not CONNECT_LOAD.exists() or CONNECT_LOAD.stat().st_mtime < source.stat().st_mtime:
        CONNECT_LOAD.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-o", str(CONNECT_LOAD), str(source)], check=True, timeout=120
        )
    return CONNECT_LOAD


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(plan: Plan, command: list[str], timeout: float) -> tuple[str, float]:
    """Run the load generator; returns its stdout and its CPU seconds per wall second."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    pinned = ["taskset", "-c", plan.cpus, *command] if plan.cpus else command
    done = subprocess.run(pinned, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    elapsed = time.perf_counter() - started
    return done.stdout, (_children_cpu() - cpu_before) / elapsed


def _last_json(output: str) -> dict[str, object]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    raise RuntimeError(f"no JSON result in: {output[-1000:]}")


def _loadgen(setup: Setup) -> list[str]:
    command = [sys.executable, "-m", "benchmarks.loadgen"]
    if setup.proxy is not None:
        command += ["--proxy-port", str(setup.proxy[1])]
    if setup.auth:
        command += ["--auth", setup.auth]
    return command


WRK_SCRIPT = """
local target = os.getenv("BENCH_TARGET")
local auth = os.getenv("BENCH_AUTH")
if os.getenv("BENCH_PROXY") == "1" then
  wrk.path = "http://" .. target .. "/1k"
  wrk.headers["Host"] = target
end
if auth and auth ~= "" then
  wrk.headers["Proxy-Authorization"] = auth
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def small_requests(plan: Plan, setup: Setup, targets: Targets, work: Path) -> dict[str, float]:
    """(a) 1 KiB responses, 64 keep-alive connections, wrk."""
    script = work / "small.lua"
    script.write_text(WRK_SCRIPT)
    port = setup.proxy[1] if setup.proxy else targets.http_port
    target = f"{HOST}:{targets.http_port}"
    env_args = [
        "env",
        f"BENCH_TARGET={target}",
        f"BENCH_AUTH={setup.auth or ''}",
        f"BENCH_PROXY={1 if setup.proxy else 0}",
    ]
    command = [
        *env_args,
        "wrk",
        "-t1",
        f"-c{SMALL_CONCURRENCY}",
        f"-d{plan.seconds:g}s",
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{port}/1k",
    ]
    output, cpu = _run(plan, command, plan.seconds + 60)
    result = _last_json(output)
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    return {
        "req_per_s": float(result["requests"]) / seconds,  # type: ignore[arg-type]
        "p50_ms": float(result["p50_ms"]),  # type: ignore[arg-type]
        "p99_ms": float(result["p99_ms"]),  # type: ignore[arg-type]
        "errors": float(result["errors"]),  # type: ignore[arg-type]
        "client_cpu": cpu,
    }


def new_connections(plan: Plan, setup: Setup, targets: Targets, work: Path) -> dict[str, float]:
    """(b) a new CONNECT tunnel per request: 64 at once (throughput), then one at a time (TTFB)."""
    port = str(setup.proxy[1]) if setup.proxy else "0"
    auth = [setup.auth] if setup.auth else []
    base = [str(build_connect_load()), port, str(targets.http_port)]
    output, cpu = _run(
        plan, [*base, str(CONNECT_CONCURRENCY), f"{plan.seconds:g}", "0", *auth], plan.seconds + 60
    )
    loaded = _last_json(output)
    output, _ = _run(plan, [*base, "1", f"{plan.seconds / 2:g}", "0", *auth], plan.seconds + 60)
    serial = _last_json(output)
    return {
        "tunnels_per_s": float(loaded["per_second"]),  # type: ignore[arg-type]
        "failures": float(loaded["failures"]),  # type: ignore[arg-type]
        "loaded_ttfb_p50_ms": float(loaded["ttfb_p50_ms"]),  # type: ignore[arg-type]
        "ttfb_p50_ms": float(serial["ttfb_p50_ms"]),  # type: ignore[arg-type]
        "ttfb_p99_ms": float(serial["ttfb_p99_ms"]),  # type: ignore[arg-type]
        "serial_failures": float(serial["failures"]),  # type: ignore[arg-type]
        "client_cpu": cpu,
    }


def bulk(plan: Plan, setup: Setup, targets: Targets, work: Path) -> dict[str, float]:
    """(c) one download and one upload of ``bulk_size`` bytes, each through one tunnel."""
    size = str(plan.bulk_size)
    down, _ = _run(
        plan,
        [*_loadgen(setup), "bulk", "--target-port", str(targets.http_port), "--size", size],
        300,
    )
    up, _ = _run(
        plan,
        [
            *_loadgen(setup),
            "bulk",
            "--direction",
            "up",
            "--target-port",
            str(targets.sink_port),
            "--size",
            size,
        ],
        300,
    )
    return {
        "down_mb_per_s": float(_last_json(down)["mb_per_s"]),  # type: ignore[arg-type]
        "up_mb_per_s": float(_last_json(up)["mb_per_s"]),  # type: ignore[arg-type]
    }


def open_tunnels(plan: Plan, setup: Setup, targets: Targets, work: Path) -> dict[str, float]:
    """(d) 1,000 tunnels open at once, each a GET /1k a second; peak RSS of each process."""
    command = [
        *_loadgen(setup),
        "tunnels",
        "--target-port",
        str(targets.http_port),
        "--count",
        str(OPEN_TUNNELS),
        "--hold",
        f"{plan.tunnels_hold:g}",
    ]
    if plan.cpus:
        command = ["taskset", "-c", plan.cpus, *command]
    before = {role: rss_bytes(pid) for role, pid in setup.pids.items()}
    peak = dict(before)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            if not ready.startswith("ready"):
                raise RuntimeError(f"tunnels did not open: {ready!r}")
            while proc.poll() is None:
                for role, pid in setup.pids.items():
                    peak[role] = max(peak[role], rss_bytes(pid))
                time.sleep(0.25)
            result = _last_json(proc.stdout.read())
        finally:
            proc.kill()  # a no-op once it has exited; on an interrupt it must not outlive us
    metrics = {
        "open": float(result["open"]),  # type: ignore[arg-type]
        "failures": float(result["failures"]),  # type: ignore[arg-type]
    }
    for role in ("server", "agent", "proxy"):
        if role in peak:
            metrics[f"{role}_rss_mb"] = peak[role] / MIB
            metrics[f"{role}_idle_rss_mb"] = before[role] / MIB
    metrics["total_rss_mb"] = sum(peak.values()) / MIB  # every process of the setup
    return metrics


WORKLOADS = {
    "a": ("small keep-alive requests", small_requests),
    "b": ("new CONNECT per request", new_connections),
    "c": ("bulk through one tunnel", bulk),
    "d": ("1,000 open tunnels", open_tunnels),
}

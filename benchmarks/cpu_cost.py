"""CPU the server and the agent spend per tunnel, per request or per MB: for A/B comparisons.

On a small shared machine throughput swings with whatever else runs; CPU
seconds per unit of work (user + system, from /proc) swing much less. Run it
against two checkouts alternately (``PYTHONPATH`` picks whose ``server/``,
``tunnel/``, ``wire/`` and ``desktop_agent/`` the processes import) and
compare medians. Optionally records a py-spy profile of both processes.

    .venv/bin/python -m benchmarks.cpu_cost connect ttfb small down up [--repeats 2]
        [--profile DIR]   # py-spy raw stacks of the server and the agent (first workload)
        [--setup floor]   # the same for benchmarks.floor_proxy (not ``small``)
    PYTHONPATH=/path/to/other/checkout .venv/bin/python -m benchmarks.cpu_cost connect

Workloads: ``connect`` (5,000 CONNECT tunnels, 64 at once), ``ttfb`` (1,000
one at a time), ``small`` (wrk, 5 s of 1 KiB keep-alive requests), ``down``
and ``up`` (200 MB through one tunnel).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import setups, workloads
from benchmarks.procs import Procs

BULK = 200_000_000
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(user, system) clock ticks a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]), int(fields[12])


def run_once(
    workload: str, setup: setups.Setup, targets: setups.Targets, work: Path
) -> tuple[float, str, dict[str, float]]:
    """Run one workload; returns (units of work, unit name, result)."""
    assert setup.proxy is not None and setup.auth is not None
    tunnels = [str(workloads.build_connect_load()), str(setup.proxy[1]), str(targets.http_port)]
    loadgen = [sys.executable, "-m", "benchmarks.loadgen", "--proxy-port", str(setup.proxy[1])]
    loadgen += ["--auth", setup.auth, "bulk", "--size", str(BULK)]
    if workload in ("connect", "ttfb"):
        count = 5000 if workload == "connect" else 1000
        concurrency = "64" if workload == "connect" else "1"
        done = subprocess.run(
            [*tunnels, concurrency, "120", str(count), setup.auth],
            capture_output=True,
            text=True,
            check=True,
        )
        return count, "tunnel", json.loads(done.stdout)
    if workload == "small":
        plan = workloads.Plan(seconds=5, bulk_size=0, tunnels_hold=0, cpus=None)
        result = workloads.small_requests(plan, setup, targets, work)
        return result["req_per_s"] * 5, "request", result
    port = targets.http_port if workload == "down" else targets.sink_port
    direction = ["--direction", "up"] if workload == "up" else []
    done = subprocess.run(
        [*loadgen, *direction, "--target-port", str(port)],
        capture_output=True,
        text=True,
        check=True,
    )
    return BULK / 1e6, "MB", json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="+", choices=("connect", "ttfb", "small", "down", "up"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", type=Path, help="write py-spy raw stacks here")
    parser.add_argument(
        "--setup",
        choices=("exitpool", "floor"),
        default="exitpool",
        help="floor: the bare relay of benchmarks.floor_proxy (CONNECT workloads only)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exitpool-cpu-"))
    with Procs(work) as procs:
        targets = setups.start_targets(procs, work, BULK)
        if args.setup == "floor":
            setup = setups.start_floor(procs, targets)
            setup.auth = "Basic none"  # the load generators send it; the floor ignores it
        else:
            setup = setups.start_exitpool(procs, work, targets, 1, "exitpool")
        spies = []
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for role, pid in setup.pids.items():
                out = args.profile / f"{args.workloads[0]}-{role}.txt"
                command = ["py-spy", "record", "-r", "200", "-d", "10", "-f", "raw", "-o", str(out)]
                spies.append(
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / command[0]),
                            *command[1:],
                            "-p",
                            str(pid),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        for workload in args.workloads:
            for _ in range(args.repeats):
                before = {role: cpu_ticks(pid) for role, pid in setup.pids.items()}
                started = time.perf_counter()
                units, unit, result = run_once(workload, setup, targets, work)
                elapsed = time.perf_counter() - started
                costs = []
                for role, pid in setup.pids.items():
                    user, system = (
                        b - a for a, b in zip(before[role], cpu_ticks(pid), strict=True)
                    )
                    per_unit = 1e6 / TICKS / units
                    costs.append(f"{role} {user * per_unit:.0f}+{system * per_unit:.0f} us")
                    costs.append(f"({(user + system) / TICKS / elapsed:.2f} cores)")
                shown = {k: round(v, 3) for k, v in result.items() if isinstance(v, float)}
                print(f"{workload}: {shown}; CPU per {unit} (user+sys): {' '.join(costs)}")
        for spy in spies:
            spy.wait()


if __name__ == "__main__":
    main()

"""Exitpool next to direct, tinyproxy, pproxy (backward) and a bare Python relay, in one run.

    .venv/bin/python -m benchmarks.run [--quick] [--only a,b,c,d,e] [--setups exitpool,pproxy]
                                       [--repeats 3] [--pin CPUS]

Workloads: (a) 1 KiB responses over 64 keep-alive connections (wrk);
(b) a new CONNECT tunnel per request (``connect_load``, C); (c) a bulk
download and upload through one tunnel; (d) 1,000 open tunnels moving a
little data, with the RSS of each process; (e) 10,000 idle simulated agents
on one server (:mod:`benchmarks.simagents`). Each measurement is repeated
(setups interleaved, so drift in the machine's load hits all of them alike)
and the medians are printed with ratios, written to
``benchmarks/results/latest.json`` and drawn in ``latest.png``.
Every process started is ended on exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from benchmarks import report, setups
from benchmarks.idle_agents import IdlePlan, idle_agents
from benchmarks.procs import Procs
from benchmarks.workloads import WORKLOADS, Plan

RESULTS = Path(__file__).resolve().parent / "results"
ALL_SETUPS = ("direct", "tinyproxy", "pproxy", "floor", "exitpool", "exitpool-4")
# The floor proxy relays CONNECT only (workload (a) sends absolute-form requests).
NOT_APPLICABLE = {"a": {"floor"}, "d": {"direct"}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one repeat (< 2 min)")
    parser.add_argument("--only", default="a,b,c,d,e", help="workloads to run, e.g. a,b")
    parser.add_argument("--setups", default=",".join(ALL_SETUPS), help="systems to compare")
    parser.add_argument("--repeats", type=int, help="measurements per cell (default 3, quick 1)")
    parser.add_argument("--pin", metavar="CPUS", help="run the load generator on these CPUs only")
    parser.add_argument("--agents", type=int, help="idle simulated agents (default 10000)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where latest.* go")
    args = parser.parse_args(argv)
    args.only = [w for w in args.only.split(",") if w]
    args.setups = [s for s in args.setups.split(",") if s]
    unknown = set(args.only) - {*WORKLOADS, "e"} | set(args.setups) - set(ALL_SETUPS)
    if unknown:
        parser.error(f"unknown workload or setup: {', '.join(sorted(unknown))}")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def start_setups(procs: Procs, work: Path, names: list[str], targets: setups.Targets) -> list[Any]:
    started = []
    for name in names:
        if name == "direct":
            started.append(setups.start_direct())
        elif name == "tinyproxy":
            started.append(setups.start_tinyproxy(procs, work, targets))
        elif name == "pproxy":
            started.append(setups.start_pproxy(procs, targets))
        elif name == "floor":
            started.append(setups.start_floor(procs, targets))
        elif name == "exitpool":
            started.append(setups.start_exitpool(procs, work, targets, 1, name))
        elif name == "exitpool-4":
            started.append(setups.start_exitpool(procs, work, targets, 4, name))
        print(f"  {name} up", flush=True)
    return started


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    plan = Plan(
        seconds=3.0 if args.quick else 10.0,
        bulk_size=50_000_000 if args.quick else 200_000_000,
        tunnels_hold=5.0 if args.quick else 15.0,
        cpus=args.pin,
    )
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    with Procs(work) as procs:
        proxied = [w for w in args.only if w in WORKLOADS]
        if proxied:
            print("starting targets and setups…", flush=True)
            targets = setups.start_targets(procs, work, plan.bulk_size)
            started = start_setups(procs, work, args.setups, targets)
            for repeat in range(args.repeats):
                for workload in proxied:
                    title, run = WORKLOADS[workload]
                    for setup in started:
                        if setup.name in NOT_APPLICABLE.get(workload, ()):
                            continue
                        print(f"[{repeat + 1}/{args.repeats}] ({workload}) {title}: {setup.name}")
                        try:
                            result = run(plan, setup, targets, work)
                        except Exception as exc:  # one failed cell must not lose the rest
                            traceback.print_exc()
                            result = {"error": 1.0}
                            print(f"    failed: {exc}", flush=True)
                        print("    " + report.brief(result), flush=True)
                        cell = runs.setdefault(workload, {}).setdefault(setup.name, {})
                        for metric, value in result.items():
                            cell.setdefault(metric, []).append(value)
            procs.stop_all()
        if "e" in args.only:
            count = args.agents or (2000 if args.quick else 10_000)
            idle_plan = IdlePlan(count=count, hold=30.0 if args.quick else 75.0, cpus=args.pin)
            print(f"(e) {count} idle simulated agents on one server", flush=True)
            result = idle_agents(idle_plan, procs, work)
            print("    " + report.brief(result), flush=True)
            runs["e"] = {"exitpool": {k: [v] for k, v in result.items()}}
    return runs


def medians(runs: dict[str, dict[str, dict[str, list[float]]]]) -> dict[str, Any]:
    return {
        workload: {
            setup: {metric: statistics.median(values) for metric, values in cells.items()}
            for setup, cells in by_setup.items()
        }
        for workload, by_setup in runs.items()
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="exitpool-bench-"))
    try:
        runs = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = medians(runs)
    document = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "load_generator_cpus": args.pin or "any (unpinned; everything shares all cores)",
        },
        "repeats": args.repeats,
        "quick": args.quick,
        "medians": summary,
        "runs": runs,
        "targets": report.targets(summary, runs),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    print()
    print(report.table(document))
    chart = report.chart(document, args.results / "latest.png")
    print(f"\nwrote {args.results / 'latest.json'}" + (f" and {chart}" if chart else ""))


if __name__ == "__main__":
    main()

"""Turning medians into the printed table, the issue's targets, and the PNG chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

COLUMNS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "a": (
        "(a) small keep-alive requests, 1 KiB, 64 connections",
        [("req_per_s", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("errors", "errors")],
    ),
    "b": (
        "(b) new CONNECT tunnel per request",
        [
            ("tunnels_per_s", "tunnels/s"),
            ("failures", "failures"),
            ("ttfb_p50_ms", "TTFB p50 ms"),
            ("ttfb_p99_ms", "TTFB p99 ms"),
            ("loaded_ttfb_p50_ms", "TTFB@64 p50 ms"),
        ],
    ),
    "c": (
        "(c) bulk through one tunnel",
        [("down_mb_per_s", "down MB/s"), ("up_mb_per_s", "up MB/s")],
    ),
    "d": (
        "(d) 1,000 open tunnels",
        [
            ("open", "open"),
            ("failures", "failures"),
            ("server_rss_mb", "server/public RSS MB"),
            ("agent_rss_mb", "agent/exit RSS MB"),
            ("proxy_rss_mb", "proxy RSS MB"),
            ("total_rss_mb", "all processes RSS MB"),
        ],
    ),
    "e": (
        "(e) idle simulated agents on one server",
        [
            ("agents", "agents"),
            ("server_rss_mb", "server RSS MB"),
            ("ping_gap_max_s", "max ping gap s"),
            ("pong_p99_ms", "pong p99 ms"),
            ("dropped", "dropped"),
        ],
    ),
}
RATIO_METRIC = {
    "a": "req_per_s",
    "b": "tunnels_per_s",
    "c": "down_mb_per_s",
    "d": "total_rss_mb",
}
PEERS = ("direct", "tinyproxy", "pproxy", "floor")


def brief(result: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in result.items())


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(document: dict[str, Any]) -> str:
    """Medians per workload and setup, with exitpool's ratio to each peer."""
    lines = [
        f"median of {document['repeats']} run(s); command: {document['command']}",
        f"machine: {document['machine']['cpus']} cores shared by everything; "
        f"load generator on: {document['machine']['load_generator_cpus']}",
    ]
    for workload, by_setup in document["medians"].items():
        title, columns = COLUMNS[workload]
        metric = RATIO_METRIC.get(workload)
        peers = [p for p in PEERS if p in by_setup and metric]
        header = ["setup", *(label for _, label in columns), *(f"x{p}" for p in peers)]
        rows = [header]
        for setup, values in by_setup.items():
            row = [setup, *(_fmt(values.get(key)) for key, _ in columns)]
            for peer in peers:
                mine, theirs = values.get(metric or ""), by_setup[peer].get(metric or "")
                row.append(f"{mine / theirs:.2f}" if mine and theirs else "-")
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines += ["", title]
        for row in rows:
            lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    lines += ["", "targets (from the issue):"]
    for target in document["targets"]:
        mark = "MET " if target["met"] else "MISS" if target["met"] is False else "n/a "
        lines.append(f"  [{mark}] {target['name']}: {target['detail']}")
    return "\n".join(lines)


def targets(medians: dict[str, Any], runs: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets checked against the medians (``met`` None when not measured)."""

    def get(workload: str, setup: str, metric: str) -> float | None:
        value = medians.get(workload, {}).get(setup, {}).get(metric)
        return None if value is None or math.isnan(value) else float(value)

    checks: list[dict[str, Any]] = []

    def check(name: str, values: list[float | None], test: Any, detail: str) -> None:
        if any(v is None for v in values):
            checks.append({"name": name, "met": None, "detail": "not measured"})
        else:
            checks.append(
                {"name": name, "met": bool(test(*values)), "detail": detail % tuple(values)}
            )

    ep, pp, tp, direct = "exitpool", "pproxy", "tinyproxy", "direct"
    check(
        "(a) small keep-alive ≥ pproxy",
        [get("a", ep, "req_per_s"), get("a", pp, "req_per_s")],
        lambda e, p: e >= p,
        "%.0f vs %.0f req/s",
    )
    failures = sum(runs.get("b", {}).get(ep, {}).get("failures", [math.nan]))
    check(
        "(b) new connections ≥ 2x pproxy, ≥ 50% of tinyproxy, zero failures",
        [
            get("b", ep, "tunnels_per_s"),
            get("b", pp, "tunnels_per_s"),
            get("b", tp, "tunnels_per_s"),
            failures,
        ],
        lambda e, p, t, f: e >= 2 * p and e >= 0.5 * t and f == 0,
        "%.0f vs pproxy %.0f and tinyproxy %.0f tunnels/s, %.0f failures",
    )
    check(
        "(c) bulk download ≥ pproxy",
        [get("c", ep, "down_mb_per_s"), get("c", pp, "down_mb_per_s")],
        lambda e, p: e >= p,
        "%.0f vs %.0f MB/s",
    )
    check(
        "(c) bulk upload ≥ pproxy",
        [get("c", ep, "up_mb_per_s"), get("c", pp, "up_mb_per_s")],
        lambda e, p: e >= p,
        "%.0f vs %.0f MB/s",
    )
    check(
        "new CONNECT TTFB adds ≤ 1 ms p50 over direct",
        [get("b", ep, "ttfb_p50_ms"), get("b", direct, "ttfb_p50_ms")],
        lambda e, d: e - d <= 1.0,
        "%.2f vs %.2f ms",
    )
    check(
        "server RSS at 1,000 open tunnels < 300 MB",
        [get("d", ep, "server_rss_mb")],
        lambda s: s < 300,
        "%.0f MB",
    )
    check(
        "10,000 idle agents: server RSS < 1 GiB, heartbeats on time",
        [get("e", ep, "agents"), get("e", ep, "server_rss_mb"), get("e", ep, "late")],
        lambda n, s, late: n >= 10_000 and s < 1024 and late == 0,
        "%.0f agents, %.0f MB, %.0f late heartbeats",
    )
    return checks


def chart(document: dict[str, Any], path: Path) -> Path | None:
    """Bar charts of the headline metrics; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart (make bench installs it)")
        return None
    panels = [
        ("a", "req_per_s", "(a) small keep-alive, req/s"),
        ("b", "tunnels_per_s", "(b) new CONNECT, tunnels/s"),
        ("b", "ttfb_p50_ms", "(b) CONNECT TTFB p50, ms"),
        ("c", "down_mb_per_s", "(c) bulk download, MB/s"),
        ("c", "up_mb_per_s", "(c) bulk upload, MB/s"),
        ("d", "total_rss_mb", "(d) 1,000 open tunnels, RSS of all its processes, MB"),
    ]
    medians = document["medians"]
    panels = [p for p in panels if p[0] in medians]
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    colours = {
        "exitpool": "#2a7",
        "exitpool-4": "#6c9",
        "pproxy": "#d84",
        "tinyproxy": "#48c",
        "floor": "#bbb",
    }
    for ax, (workload, metric, title) in zip(axes.flat, panels, strict=False):
        names = [s for s, v in medians[workload].items() if metric in v]
        values = [medians[workload][s][metric] for s in names]
        ax.bar(names, values, color=[colours.get(n, "#999") for n in names])
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        for index, value in enumerate(values):
            ax.annotate(_fmt(value), (index, value), ha="center", va="bottom", fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    figure.suptitle(f"Exitpool benchmarks, {document['date']} (medians of {document['repeats']})")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path

"""Resident memory of a process, read from ``/proc/PID/status`` (Linux)."""

from __future__ import annotations

import threading
from collections.abc import Iterable


def rss_bytes(pid: int) -> int:
    """The process's resident set size now (``VmRSS``), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Samples the RSS of some processes in a background thread; keeps each one's peak.

    Use as a context manager; ``interval`` bounds how short a spike can hide between samples.
    """

    def __init__(self, pids: Iterable[int], interval: float = 0.1) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peak = {pid: 0 for pid in self.pids}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        for pid in self.pids:
            self.peak[pid] = max(self.peak[pid], rss_bytes(pid))
        self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

"""Every process a benchmark run starts, each in its own process group, all ended on exit.

A run starts a dozen processes (nginx, tinyproxy, two pproxy, servers,
agents, load generators). Each goes into its own session so that one
``killpg`` ends it with whatever it forked (nginx workers, tinyproxy threads);
:class:`Procs` is a context manager that ends them all, also on Ctrl-C or an
exception, so a run never leaves anything behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType

STOP_TIMEOUT = 10.0
"""Seconds a process has to exit after SIGTERM before it gets SIGKILL."""


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is truthy; raise naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (``VmRSS``), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time one process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Procs:
    """Starts processes into ``logdir`` and ends every one of them on exit."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: list[subprocess.Popen[bytes]] = []
        self._previous_term: object = None

    def __enter__(self) -> Procs:
        # SIGTERM to the benchmark becomes an exception, so the cleanup below runs.
        self._previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
        signal.signal(signal.SIGTERM, self._previous_term)  # type: ignore[arg-type]

    def spawn(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        cpus: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` in a new session, output to ``logdir/name.log``, pinned to ``cpus``."""
        command = [*(["taskset", "-c", cpus] if cpus else []), *args]
        with open(self.logdir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.running.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Children that outlived their leader (nginx workers) are still in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")

"""Real Exitpool processes for integration tests: the server and headless agents.

Each process writes its output to a log file in the test's temp dir; readiness
is read from that log (the server's "ready" banner, the agent's "online as"),
so a test never sleeps blindly and never fills a pipe nobody reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.support.target import free_port

BIN = Path(sys.executable).parent
SERVER_BIN = str(BIN / "exitpool-server")
AGENT_BIN = str(BIN / "exitpool-agent")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class LoggedProcess:
    """A child process whose stdout and stderr go to one log file."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        handle = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        handle.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def count(self, text: str) -> int:
        return self.log().count(text)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class ServerProcess(LoggedProcess):
    """``exitpool-server run`` on free loopback ports with its own data dir."""

    def __init__(
        self, tmp: Path, env: dict[str, str] | None = None, open_files: int | None = None
    ) -> None:
        super().__init__(tmp / "server.log")
        self.data_dir = tmp / "server-data"
        self.http_port = free_port()
        self.proxy_port = free_port()
        self.env = env or {}
        self.open_files = open_files
        """If set, the server runs with this open-file limit (soft and hard), like a small host."""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws/agent"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def proxy_url(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.proxy_port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        ready_before = self.count("Exitpool server ready")
        limit = ["prlimit", f"--nofile={self.open_files}"] if self.open_files else []
        self._spawn(
            [
                *limit,
                SERVER_BIN,
                "run",
                "--data-dir",
                str(self.data_dir),
                "--http",
                f"127.0.0.1:{self.http_port}",
                "--proxy",
                f"127.0.0.1:{self.proxy_port}",
            ],
            self.env,
        )
        wait_for(
            lambda: self.count("Exitpool server ready") > ready_before or not self.running,
            timeout,
            "the server to start",
        )
        assert self.running, f"server exited early:\n{self.log()}"
        return self

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run another ``exitpool-server`` command on the same data dir; returns stdout."""
        done = subprocess.run(
            [SERVER_BIN, "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **self.env, **(env or {})},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def create_admin(self, name: str, password: str) -> None:
        """A superuser who can log in to the admin pages (before :meth:`start`, it also
        keeps the first start from making its own ``admin``)."""
        self.cli(
            *("createsuperuser", "--noinput", "--username", name, "--email", f"{name}@example.com"),
            env={"DJANGO_SUPERUSER_PASSWORD": password},
        )

    def enrollment_key(self, label: str = "") -> str:
        return self.cli("enrollkey", "--label", label).strip().splitlines()[-1]


class AgentProcess(LoggedProcess):
    """``exitpool-agent --headless`` with its own config dir, exiting from ``source``."""

    def __init__(
        self,
        tmp: Path,
        server: ServerProcess,
        key: str,
        name: str,
        source: str,
        allow: tuple[str, ...] = ("127.0.0.0/8",),
        extra: tuple[str, ...] = ("--connect-timeout", "2"),
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(tmp / f"agent-{name}.log")
        self.env = env or {}
        self.server = server
        self.key = key
        self.name = name
        self.source = source
        self.allow = allow
        self.extra = extra
        self.config_dir = tmp / f"agent-{name}"

    def start(self, wait_online: bool = True, timeout: float = 30.0) -> AgentProcess:
        online_before = self.count("online as")
        args = [
            AGENT_BIN,
            "--headless",
            "--server",
            self.server.ws_url,
            "--key",
            self.key,
            "--name",
            self.name,
            "--source-address",
            self.source,
            "--config-dir",
            str(self.config_dir),
            *self.extra,
        ]
        for network in self.allow:
            args += ["--allow-network", network]
        self._spawn(args, self.env)
        if wait_online:
            self.wait_online(online_before, timeout)
        return self

    def wait_online(self, online_before: int, timeout: float = 30.0) -> None:
        wait_for(
            lambda: self.count("online as") > online_before or not self.running,
            timeout,
            f"agent {self.name} to come online",
        )
        assert self.running, f"agent exited early:\n{self.log()}"


async def enroll_raw_agent(
    http: aiohttp.ClientSession, server: ServerProcess, key: str, name: str
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, object]]:
    """A bare protocol client: enrolls with ``key`` as ``name``; returns it and its WELCOME.

    For tests that must act as an agent our engine would never be (silent, rogue).
    """
    ws = await http.ws_connect(server.ws_url, headers={"X-Exitpool-Enrollment-Key": key})
    await ws.send_str(f'{{"type":"hello","version":1,"name":"{name}"}}')
    welcome = await ws.receive_json(timeout=10)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome

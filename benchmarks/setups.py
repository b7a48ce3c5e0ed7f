"""The systems compared, started side by side on loopback: targets, peers and Exitpool.

* **direct**: the client talks to the target itself (the physical limit);
* **tinyproxy** (Debian package, a one-hop forward proxy in C);
* **pproxy** in backward mode (PyPI, in its own venv without uvloop): the exit
  side dials out to the public side, like our agents;
* **floor** (:mod:`benchmarks.floor_proxy`): the least a Python proxy does per
  tunnel, one uvloop process relaying CONNECT with nothing else: a yardstick;
* **exitpool**: ``exitpool-server run`` and one headless agent, and
  **exitpool-4** with four agents.

Targets: nginx serves static files (``/1k`` and ``/bulk``), :mod:`benchmarks.sink`
reads uploads. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.procs import Procs, wait_for

HOST = "127.0.0.1"
AGENT_SOURCE = "127.0.0.2"
"""Agents connect to targets from here, as in the integration tests."""
USER, PASSWORD = "bench", "bench-pw"
SMALL_SIZE = 1024
PPROXY_VENV = Path(__file__).resolve().parent / ".venv-pproxy"
BIN = Path(sys.executable).parent
START_TIMEOUT = 90.0
EXITPOOL_ENV = {
    # One bench user opens 1,000 tunnels at once (workload d): lift the per-user cap.
    "EXITPOOL_USER_MAX_STREAMS": "4096",
    "EXITPOOL_MAX_STREAMS_PER_AGENT": "4096",
}
AGENT_MAX_STREAMS = 2048


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def probe_connect(setup: Setup, target_port: int) -> bool:
    """One CONNECT + GET /1k through ``setup``: True once a full response came back."""
    try:
        with socket.create_connection(setup.address, timeout=5) as sock:
            request = f"GET /1k HTTP/1.1\r\nHost: {HOST}:{target_port}\r\n\r\n".encode()
            if setup.proxy is not None:
                sock.sendall(setup.connect_request(HOST, target_port))
                if _read_head(sock).split(b" ", 2)[1:2] != [b"200"]:
                    return False
            sock.sendall(request)
            head = _read_head(sock)
            return head.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@dataclass
class Targets:
    http_port: int
    sink_port: int
    bulk_size: int


@dataclass
class Setup:
    """One system under test: where clients connect and which processes to weigh."""

    name: str
    proxy: tuple[str, int] | None
    auth: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    """Role ("server", "agent", …) → pid, for RSS and CPU readings."""

    @property
    def address(self) -> tuple[str, int]:
        return self.proxy if self.proxy is not None else (HOST, 0)

    def connect_request(self, host: str, port: int) -> bytes:
        auth = f"Proxy-Authorization: {self.auth}\r\n" if self.auth else ""
        return f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode()


def start_targets(procs: Procs, work: Path, bulk_size: int) -> Targets:
    www = work / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "1k").write_bytes(b"x" * SMALL_SIZE)
    with open(www / "bulk", "wb") as bulk:
        block = os.urandom(1 << 20)
        for offset in range(0, bulk_size, len(block)):
            bulk.write(block[: bulk_size - offset])
    for path in (work, www):
        path.chmod(0o755)  # nginx's worker may run as another user
    http_port, sink_port = free_port(), free_port()
    conf = work / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""{user}worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    default_type application/octet-stream;
    server {{
        listen {HOST}:{http_port} backlog=4096;
        root {www};
    }}
}}
"""
    )
    procs.spawn("nginx", ["/usr/sbin/nginx", "-p", str(work), "-c", str(conf)])
    procs.spawn("sink", [sys.executable, "-m", "benchmarks.sink", "--port", str(sink_port)])
    wait_for(lambda: port_open(http_port) and port_open(sink_port), 20, "nginx and the sink")
    return Targets(http_port, sink_port, bulk_size)


def start_direct() -> Setup:
    return Setup("direct", None)


def start_tinyproxy(procs: Procs, work: Path, targets: Targets) -> Setup:
    port = free_port()
    conf = work / "tinyproxy.conf"
    conf.write_text(
        f"""Port {port}
Listen {HOST}
Timeout 600
MaxClients 1000
LogLevel Critical
Allow 127.0.0.0/8
DisableViaHeader Yes
ConnectPort {targets.http_port}
ConnectPort {targets.sink_port}
"""
    )
    proc = procs.spawn("tinyproxy", ["tinyproxy", "-d", "-c", str(conf)])
    setup = Setup("tinyproxy", (HOST, port), pids={"proxy": proc.pid})
    wait_for(lambda: probe_connect(setup, targets.http_port), 20, "tinyproxy")
    return setup


def start_pproxy(procs: Procs, targets: Targets) -> Setup:
    """pproxy backward: the public side listens, the exit side dials out to it."""
    binary = str(PPROXY_VENV / "bin" / "pproxy")
    port, backward, unused = free_port(), free_port(), free_port()
    public = procs.spawn(
        "pproxy-public",
        [binary, "-l", f"http://{HOST}:{port}", "-r", f"http+in://{HOST}:{backward}"],
    )
    wait_for(lambda: port_open(backward), 20, "pproxy's public side")
    # 2.7.9's backward client exits at start unless it has a second, ordinary listener.
    exit_side = procs.spawn(
        "pproxy-exit",
        [binary, "-l", f"http+in://{HOST}:{backward}", "-l", f"http://{HOST}:{unused}"],
    )
    setup = Setup("pproxy", (HOST, port), pids={"server": public.pid, "agent": exit_side.pid})
    wait_for(lambda: probe_connect(setup, targets.http_port), 30, "pproxy backward")
    return setup


def start_floor(procs: Procs, targets: Targets) -> Setup:
    """The bare one-process CONNECT relay of :mod:`benchmarks.floor_proxy`."""
    port = free_port()
    proc = procs.spawn(
        "floor", [sys.executable, "-m", "benchmarks.floor_proxy", "--port", str(port)]
    )
    setup = Setup("floor", (HOST, port), pids={"proxy": proc.pid})
    wait_for(lambda: probe_connect(setup, targets.http_port), 20, "the floor proxy")
    return setup


@dataclass
class ExitpoolServer:
    name: str
    pid: int
    http_port: int
    proxy_port: int
    key: str
    """An enrollment key for its agents."""

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.http_port}/ws/agent"


def start_exitpool_server(
    procs: Procs, work: Path, name: str, env: dict[str, str] | None = None
) -> ExitpoolServer:
    """``exitpool-server run`` with a fresh data dir, the bench user and an enrollment key."""
    data = work / f"{name}-data"
    http_port, proxy_port = free_port(), free_port()
    env = {**EXITPOOL_ENV, **(env or {}), "EXITPOOL_DATA_DIR": str(data)}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(BIN / "exitpool-server"), "--data-dir", str(data), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
            check=True,
        )
        return done.stdout

    cli("migrate", "-v", "0")
    cli("proxyuser", USER, "--password", PASSWORD)
    key = cli("enrollkey", "--label", "bench").strip().splitlines()[-1]
    server = procs.spawn(
        f"{name}-server",
        [
            str(BIN / "exitpool-server"),
            "run",
            "--data-dir",
            str(data),
            "--http",
            f"{HOST}:{http_port}",
            "--proxy",
            f"{HOST}:{proxy_port}",
        ],
        env,
    )
    wait_for(
        lambda: "Exitpool server ready" in procs.log(f"{name}-server"),
        START_TIMEOUT,
        f"{name} server",
    )
    return ExitpoolServer(name, server.pid, http_port, proxy_port, key)


def start_exitpool(procs: Procs, work: Path, targets: Targets, agents: int, name: str) -> Setup:
    """``exitpool-server run`` with ``agents`` headless agents, all on loopback."""
    server = start_exitpool_server(procs, work, name)
    pids = {"server": server.pid}
    for number in range(agents):
        agent_name = f"{name}-agent-{number}"
        agent = procs.spawn(
            agent_name,
            [
                str(BIN / "exitpool-agent"),
                "--headless",
                "--server",
                server.ws_url,
                "--key",
                server.key,
                "--name",
                agent_name,
                "--source-address",
                AGENT_SOURCE,
                "--allow-network",
                "127.0.0.0/8",
                "--config-dir",
                str(work / agent_name),
                "--max-streams",
                str(AGENT_MAX_STREAMS),
                "--log-level",
                "WARNING",
            ],
        )
        pids["agent" if number == 0 else f"agent-{number}"] = agent.pid
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    setup = Setup(name, (HOST, server.proxy_port), auth, pids)
    wait_for(
        lambda: procs.log(f"{name}-server").count("online from") >= agents,
        START_TIMEOUT,
        f"{agents} agent(s) online on {name}",
    )
    wait_for(lambda: probe_connect(setup, targets.http_port), 30, f"{name} to relay")
    return setup

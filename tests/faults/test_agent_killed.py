"""An agent is killed (SIGKILL) in the middle of a download.

Expected behaviour: the user whose bytes it carried sees the connection end in a reset,
with fewer body bytes than the Content-Length announced — never a clean end that a client
could take for a complete response — both for a plain-HTTP request and inside a CONNECT
tunnel. Another agent's download running at the same time finishes intact, the dead agent
leaves the pool at once (pinned requests get 503 ``no-agent``), and rotation keeps serving.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.faults.conftest import PASSWORD, USER, proxies
from tests.support.processes import AgentProcess, ServerProcess, wait_for
from tests.support.raw_proxy import basic_auth, connect, read_to_end
from tests.support.target import TargetProcess, expected_bytes

DOOMED_SIZE = 20_000_000
DOOMED_RATE = 2_000_000  # bytes/s: the download lasts 10 s unless its agent dies
KILL_AFTER = 300_000  # body bytes received before the agent is killed
STEADY_SIZE = 6_000_000
STEADY_RATE = 2_000_000


@pytest.fixture(scope="module")
def steady(start_agent: Callable[[str, str], AgentProcess]) -> AgentProcess:
    return start_agent("pc-steady", "127.0.0.4")


class SteadyDownload(threading.Thread):
    """A download through the steady agent, running while the test kills another one."""

    def __init__(self, server: ServerProcess, target: TargetProcess) -> None:
        super().__init__()
        self.url = f"{target.url}/slow-bytes/{STEADY_SIZE}?rate={STEADY_RATE}"
        self.route = proxies(server, f"{USER}-agent-pc-steady")
        self.outcome = "not finished"

    def run(self) -> None:
        try:
            response = requests.get(self.url, proxies=self.route, timeout=30)
        except requests.RequestException as exc:
            self.outcome = repr(exc)
            return
        intact = response.status_code == 200 and response.content == expected_bytes(STEADY_SIZE)
        self.outcome = "intact" if intact else f"{response.status_code}, {len(response.content)} B"


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head and whatever body bytes came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no Content-Length in {head!r}")


@pytest.mark.parametrize("how", ["absolute-form", "connect-tunnel"])
def test_killing_an_agent_mid_download_ends_the_users_connection_in_a_visible_error(
    tmp: Path,
    server: ServerProcess,
    key: str,
    target: TargetProcess,
    steady: AgentProcess,
    how: str,
) -> None:
    name = f"pc-doomed-{how}"
    doomed = AgentProcess(tmp, server, key, name, "127.0.0.8").start()
    other = SteadyDownload(server, target)
    other.start()
    auth = basic_auth(f"{USER}-agent-{name}", PASSWORD)
    path = f"/slow-bytes/{DOOMED_SIZE}?rate={DOOMED_RATE}"
    try:
        with connect(server) as sock:
            if how == "connect-tunnel":
                sock.sendall(
                    f"CONNECT {target.host}:{target.port} HTTP/1.1\r\n"
                    f"Proxy-Authorization: {auth}\r\n\r\n".encode()
                )
                assert sock.recv(4096) == b"HTTP/1.1 200 Connection established\r\n\r\n"
                request = f"GET {path} HTTP/1.1\r\nHost: {target.host}\r\n\r\n"
            else:
                request = (
                    f"GET {target.url}{path} HTTP/1.1\r\nHost: {target.host}\r\n"
                    f"Proxy-Authorization: {auth}\r\n\r\n"
                )
            sock.sendall(request.encode())
            head, body = read_head(sock)
            assert head.startswith(b"HTTP/1.1 200")
            assert content_length(head) == DOOMED_SIZE
            received = len(body)
            while received < KILL_AFTER:
                chunk = sock.recv(65536)
                assert chunk, "the download ended before the agent was killed"
                received += len(chunk)
            doomed.kill()
            rest, ended = read_to_end(sock, timeout=10)
        received += len(rest)
    finally:
        doomed.kill()
        other.join(40)
    assert other.outcome == "intact"
    assert ended == "reset", f"the connection ended with {ended}, not a reset"
    assert KILL_AFTER <= received < DOOMED_SIZE
    wait_for(lambda: f"agent {name} offline" in server.log(), 10, "the server to drop the agent")
    pinned = requests.get(
        f"{target.url}/ip", proxies=proxies(server, f"{USER}-agent-{name}"), timeout=10
    )
    assert pinned.status_code == 503
    assert pinned.headers["X-Exitpool-Error"] == "no-agent"
    for _ in range(4):  # rotation has only the steady agent left, and it serves
        unpinned = requests.get(f"{target.url}/ip", proxies=proxies(server), timeout=10)
        assert unpinned.text == "127.0.0.4"

"""The server and the headless agent run on uvloop where it is installed, on asyncio's loop if told.

Every other integration test runs on the default (uvloop, which the ``server``
extra installs on Linux); the plain asyncio loop is what a headless agent on
Windows gets, so it is checked end to end here with its own server and agent.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import PASSWORD, USER, proxies
from tests.support.processes import AGENT_BIN, SERVER_BIN, AgentProcess, ServerProcess
from tests.support.target import TargetProcess, expected_bytes

PLAIN = {"EXITPOOL_EVENT_LOOP": "asyncio"}


@pytest.fixture(scope="module")
def plain_server(tmp: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp / "plain", env=PLAIN)
    process.cli("proxyuser", USER, "--password", PASSWORD)
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def plain_agent(tmp: Path, plain_server: ServerProcess) -> Iterator[AgentProcess]:
    key = plain_server.enrollment_key("plain")
    agent = AgentProcess(tmp / "plain", plain_server, key, "pc-plain", "127.0.0.2", env=PLAIN)
    yield agent.start()
    agent.terminate()


def test_the_default_is_uvloop_for_the_server_and_the_agent(
    server: ServerProcess, agent_a: AgentProcess
) -> None:
    assert "event loop: uvloop" in server.log()
    assert "event loop: uvloop" in agent_a.log()


def test_on_asyncio_s_own_loop_requests_and_tunnels_arrive_intact(
    plain_server: ServerProcess,
    plain_agent: AgentProcess,
    target: TargetProcess,
    tls_target: TargetProcess,
    ca_bundle: str,
) -> None:
    assert "event loop: asyncio" in plain_server.log()
    assert "event loop: asyncio" in plain_agent.log()
    size = 5 * 1024 * 1024
    want = hashlib.sha256(expected_bytes(size)).hexdigest()
    for url, verify in ((target.url, True), (tls_target.url, ca_bundle)):  # absolute form, CONNECT
        with requests.Session() as session:
            for _ in range(3):  # keep-alive: the stream is reused
                response = session.get(
                    f"{url}/bytes/{size}", proxies=proxies(plain_server), verify=verify, timeout=30
                )
                assert response.status_code == 200
                assert hashlib.sha256(response.content).hexdigest() == want
        ip = requests.get(f"{url}/ip", proxies=proxies(plain_server), verify=verify, timeout=10)
        assert ip.text == "127.0.0.2"


@pytest.mark.parametrize(
    "command",
    [
        [SERVER_BIN, "run", "--data-dir", "{tmp}/server"],
        [AGENT_BIN, "--headless", "--server", "ws://127.0.0.1:9", "--config-dir", "{tmp}/agent"],
    ],
    ids=["server", "agent"],
)
def test_an_unknown_event_loop_is_refused_with_the_choices(tmp: Path, command: list[str]) -> None:
    done = subprocess.run(
        [arg.format(tmp=tmp / "bad-loop") for arg in command],
        env={**os.environ, "EXITPOOL_EVENT_LOOP": "turbo"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "EXITPOOL_EVENT_LOOP must be one of auto, uvloop, asyncio, not 'turbo'" in done.stderr

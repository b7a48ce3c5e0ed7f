"""A stalled agent: it stops reading its WebSocket (the process is frozen with SIGSTOP).

Expected behaviour: the download it carries stalls at once while a download through another
agent keeps flowing; the server's heartbeat (``ws_ping_interval``, ``ws_ping_timeout``, set
short here) declares the stalled agent dead in time — within interval + timeout, plus slack
for a loaded machine — and its user's connection then
ends in a reset instead of hanging. When the agent runs again it reconnects by itself and
carries traffic again.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from tests.faults.conftest import PASSWORD, USER, proxies
from tests.support.processes import AgentProcess, ServerProcess, wait_for
from tests.support.raw_proxy import BackgroundDownload
from tests.support.target import TargetProcess

PING_INTERVAL = 1.0
PING_TIMEOUT = 2.0
SLACK = 3.0
DEAD_WITHIN = PING_INTERVAL + PING_TIMEOUT + SLACK
RATE = 1_000_000  # bytes/s of each download
SIZE = 100_000_000  # never finishes during the test


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {
        "EXITPOOL_WS_PING_INTERVAL": str(PING_INTERVAL),
        "EXITPOOL_WS_PING_TIMEOUT": str(PING_TIMEOUT),
    }


@pytest.fixture(scope="module")
def lively(start_agent: Callable[[str, str], AgentProcess]) -> AgentProcess:
    return start_agent("pc-lively", "127.0.0.4")


@pytest.fixture(scope="module")
def stalled(start_agent: Callable[[str, str], AgentProcess]) -> Iterator[AgentProcess]:
    agent = start_agent("pc-stalled", "127.0.0.5")
    yield agent
    if agent.proc is not None and agent.running:
        os.kill(agent.proc.pid, signal.SIGCONT)  # never leave a frozen process behind


def download(server: ServerProcess, target: TargetProcess, agent: str) -> BackgroundDownload:
    url = f"{target.url}/slow-bytes/{SIZE}?rate={RATE}"
    probe = BackgroundDownload(server, f"{USER}-agent-{agent}", PASSWORD, url)
    probe.start()
    return probe


def test_a_stalled_agent_stalls_only_its_streams_and_the_heartbeat_declares_it_dead(
    server: ServerProcess, target: TargetProcess, lively: AgentProcess, stalled: AgentProcess
) -> None:
    assert stalled.proc is not None
    online_before = stalled.count("online as")
    frozen = download(server, target, "pc-stalled")
    flowing = download(server, target, "pc-lively")
    try:
        wait_for(lambda: min(frozen.received, flowing.received) > 200_000, 10, "both downloads")
        os.kill(stalled.proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        time.sleep(0.5)  # what was in flight drains to the user
        frozen_before, flowing_before = frozen.received, flowing.received
        time.sleep(1.5)  # a sampling window, well before the heartbeat can act
        assert frozen.received == frozen_before, "bytes still came from a frozen agent"
        assert flowing.received - flowing_before > RATE // 2, "the other agent's stream stalled"

        wait_for(
            lambda: "agent pc-stalled offline" in server.log(),
            DEAD_WITHIN + 5,
            "the heartbeat to drop the stalled agent",
        )
        dead_after = time.monotonic() - stopped_at
        assert PING_TIMEOUT <= dead_after <= DEAD_WITHIN, f"declared dead after {dead_after:.1f}s"
        wait_for(lambda: frozen.ended is not None, 5, "the stalled user's connection to end")
        assert frozen.ended == "reset"
        assert flowing.ended is None and flowing.is_alive()
    finally:
        os.kill(stalled.proc.pid, signal.SIGCONT)
        frozen.stop()
        flowing.stop()

    stalled.wait_online(online_before, timeout=30)  # by itself, once it runs again
    pinned = proxies(server, f"{USER}-agent-pc-stalled")
    answer = requests.get(f"{target.url}/ip", proxies=pinned, timeout=10)
    assert answer.text == "127.0.0.5"

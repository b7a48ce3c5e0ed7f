"""The server crashes under load (SIGKILL) and is started again.

Expected behaviour: every download in flight ends short of its Content-Length (the user can
tell); the agents, all cut off at the same instant, retry with jittered exponential backoff —
their first attempts are spread out, not one thundering herd — and every one of them comes
back online by itself once the server is up, carrying traffic again with no manual step.

(A graceful restart — SIGTERM, agents closed with 1001 — is
``test_agents_reconnect_by_themselves_after_the_server_restarts`` and
``test_sigterm_closes_agents_with_1001`` in tests/integration/test_resilience.py.)
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from datetime import datetime

import pytest
import requests

from tests.faults.conftest import PASSWORD, USER, proxies
from tests.support.processes import AgentProcess, ServerProcess, wait_for
from tests.support.raw_proxy import BackgroundDownload
from tests.support.target import TargetProcess

AGENTS = 6
BACKOFF_INITIAL = 1.0  # the agent's default first reconnect delay ceiling (AgentConfig)
MIN_SPREAD = 0.05
"""Seconds between the first and last agents' first attempt. Without jitter they would
retry within a few milliseconds of each other; with it, six draws from [0.5, 1.0] s fall
within 50 ms of each other with probability 6e-5."""
BACK_WITHIN = 30.0
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (.*)$", re.M)


@pytest.fixture(scope="module")
def fleet(start_agent: Callable[..., AgentProcess]) -> list[AgentProcess]:
    agents = [start_agent(f"pc-fleet-{n}", f"127.0.1.{n + 1}", wait=False) for n in range(AGENTS)]
    for agent in agents:
        agent.wait_online(0)
    return agents


def log_times(text: str) -> list[tuple[float, str]]:
    """(timestamp, message) for every line of an agent log."""
    return [
        (datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp(), message)
        for stamp, message in LINE.findall(text)
    ]


def first_attempt(lines: list[tuple[float, str]]) -> float:
    """When the agent first tried to reconnect: the line right after its first delay."""
    for (_, message), (at, _) in itertools.pairwise(lines):
        if "reconnecting in" in message:
            return at
    raise AssertionError("the agent never retried")


def test_agents_reconnect_with_jitter_after_a_crash_and_service_resumes(
    server: ServerProcess, target: TargetProcess, fleet: list[AgentProcess]
) -> None:
    downloads = [
        BackgroundDownload(
            server,
            f"{USER}-agent-{agent.name}",
            PASSWORD,
            f"{target.url}/slow-bytes/50000000?rate=1000000",
        )
        for agent in fleet
    ]
    for download in downloads:
        download.start()
    wait_for(lambda: all(d.received > 100_000 for d in downloads), 20, "every download to flow")
    logged_before = [len(agent.log()) for agent in fleet]

    killed_at = time.time()
    server.kill()
    for download in downloads:
        download.join(10)
        assert download.ended in ("eof", "reset"), download.ended
        assert download.received < 50_000_000
    server.start()

    for agent, before in zip(fleet, logged_before, strict=True):
        wait_for(lambda a=agent, b=before: "online as" in a.log()[b:], BACK_WITHIN, agent.name)
    attempts = [
        first_attempt(log_times(agent.log()[before:]))
        for agent, before in zip(fleet, logged_before, strict=True)
    ]
    spread = max(attempts) - min(attempts)
    assert spread >= MIN_SPREAD, f"first attempts within {spread * 1000:.0f} ms: no jitter"
    assert all(at - killed_at <= BACKOFF_INITIAL + 2 for at in attempts), attempts

    for agent in fleet:
        pinned = proxies(server, f"{USER}-agent-{agent.name}")
        answer = requests.get(f"{target.url}/ip", proxies=pinned, timeout=10)
        assert answer.text == agent.source

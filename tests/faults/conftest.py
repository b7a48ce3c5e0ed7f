"""Real processes for the fault suite: a server with short limits, agents, targets on loopback.

One server per module, started with :data:`SHORT_LIMITS` plus whatever the module's own
``server_env`` fixture adds (a module overrides that fixture to shorten heartbeats, cap
connections, ...). Agents are started by :func:`start_agent` and stopped when the module ends.

Whatever a module does to them, the server's and the agents' logs must show no unhandled
exception when the module ends: that is checked at teardown, for every fault case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.logs import unhandled_errors
from tests.support.processes import AgentProcess, ServerProcess
from tests.support.target import TargetProcess

USER, PASSWORD = "fault", "fault-pw-9"
HEADER_TIMEOUT = 2.0
OPEN_TIMEOUT = 4.0
RESPONSE_TIMEOUT = 3.0
SHORT_LIMITS = {
    "EXITPOOL_CREATE_ADMIN": "0",
    "EXITPOOL_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    "EXITPOOL_OPEN_TIMEOUT": str(OPEN_TIMEOUT),
    "EXITPOOL_RESPONSE_TIMEOUT": str(RESPONSE_TIMEOUT),
}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault")


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Extra ``EXITPOOL_*`` settings for this module's server (override in a module)."""
    return {}


@pytest.fixture(scope="module")
def server_open_files() -> int | None:
    """The open-file limit this module's server runs with (None: inherited; override)."""
    return None


@pytest.fixture(scope="module")
def server(
    tmp: Path, server_env: dict[str, str], server_open_files: int | None
) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp, env={**SHORT_LIMITS, **server_env}, open_files=server_open_files)
    process.cli("proxyuser", USER, "--password", PASSWORD)
    process.start()
    yield process
    process.terminate()
    assert not unhandled_errors(process.log()), process.log()[-5000:]


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    return server.enrollment_key("faults")


@pytest.fixture(scope="module")
def start_agent(
    tmp: Path, server: ServerProcess, key: str
) -> Iterator[Callable[..., AgentProcess]]:
    """``start_agent(name, source_address, wait=True)``: a headless agent, online (unless
    ``wait`` is false: then call its ``wait_online(0)``), stopped when the module ends."""
    started: list[AgentProcess] = []

    def start(name: str, source: str, wait: bool = True) -> AgentProcess:
        agent = AgentProcess(tmp, server, key, name, source)
        started.append(agent)
        return agent.start(wait_online=wait)

    yield start
    for agent in started:
        agent.terminate()
    for agent in started:
        assert not unhandled_errors(agent.log()), agent.log()[-5000:]


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess(host="127.0.0.3") as process:
        yield process


def proxy_url(server: ServerProcess, user: str = USER) -> str:
    """The proxy URL for ``user`` (``fault``, ``fault-agent-NAME``, ...)."""
    return server.proxy_url(user, PASSWORD)


def proxies(server: ServerProcess, user: str = USER) -> dict[str, str]:
    url = proxy_url(server, user)
    return {"http": url, "https": url}

"""Fixtures that start real processes on loopback.

One server per test module (start-up is the slow part), agents exiting from
127.0.0.2 and 127.0.0.4, and targets on 127.0.0.3 that report the address a
connection came from — so a test can prove which agent carried a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.processes import AgentProcess, ServerProcess
from tests.support.target import TargetProcess

USER, PASSWORD = "alice", "s3cret-pw"
# Short limits so the tests that cross them are quick (agents connect-time out after 2 s).
HEADER_TIMEOUT = 2.0
OPEN_TIMEOUT = 4.0
RESPONSE_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp,
        env={
            "EXITPOOL_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "EXITPOOL_OPEN_TIMEOUT": str(OPEN_TIMEOUT),
            "EXITPOOL_RESPONSE_TIMEOUT": str(RESPONSE_TIMEOUT),
        },
    )
    process.cli("proxyuser", USER, "--password", PASSWORD)
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    return server.enrollment_key("tests")


@pytest.fixture(scope="module")
def agent_a(tmp: Path, server: ServerProcess, key: str) -> Iterator[AgentProcess]:
    agent = AgentProcess(tmp, server, key, "pc-a", "127.0.0.2").start()
    yield agent
    agent.terminate()


@pytest.fixture(scope="module")
def agent_b(tmp: Path, server: ServerProcess, key: str) -> Iterator[AgentProcess]:
    agent = AgentProcess(tmp, server, key, "pc-b", "127.0.0.4").start()
    yield agent
    agent.terminate()


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess(host="127.0.0.3") as process:
        yield process


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_target(tmp: Path, ca: trustme.CA) -> Iterator[TargetProcess]:
    cert = ca.issue_cert("127.0.0.3")
    cert_path, key_path = tmp / "target-cert.pem", tmp / "target-key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    with TargetProcess(host="127.0.0.3", tls=(str(cert_path), str(key_path))) as process:
        yield process


@pytest.fixture(scope="module")
def ca_bundle(tmp: Path, ca: trustme.CA) -> str:
    path = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def proxies(server: ServerProcess, user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    url = server.proxy_url(user, password)
    return {"http": url, "https": url}

"""Which agent carries a request: rotation, sticky sessions, pinning, retry, pause."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import requests

from desktop_agent.engine.client import AgentEngine, Status
from desktop_agent.engine.config import AgentConfig
from tests.integration.conftest import USER, proxies
from tests.support.processes import AgentProcess

pytestmark = pytest.mark.usefixtures("agent_a", "agent_b")


def exit_ips(server, target, user: str = USER, count: int = 10) -> list[str]:
    with requests.Session() as session:
        session.proxies = proxies(server, user)
        # A new connection per request so each one is routed afresh.
        return [
            session.get(f"{target.url}/ip", headers={"Connection": "close"}, timeout=10).text
            for _ in range(count)
        ]


@contextlib.asynccontextmanager
async def running_engine(
    tmp: Path, server, key: str, name: str, source: str
) -> AsyncIterator[AgentEngine]:
    """A real agent engine in this test's event loop, online, stopped on exit."""
    config = AgentConfig(
        server_url=server.ws_url,
        enrollment_key=key,
        name=name,
        source_address=source,
        allowed_networks=("127.0.0.0/8",),
        config_dir=tmp / f"agent-{name}",
    )
    engine = AgentEngine(config)
    task = asyncio.create_task(engine.run())
    try:
        await wait_async(lambda: engine.status is Status.ONLINE, f"{name} to come online")
        yield engine
    finally:
        engine.stop()
        await asyncio.wait_for(task, 10)


def test_it_rotates_over_agents_with_distinct_exit_ips(server, target):
    seen = collections.Counter(exit_ips(server, target))
    assert set(seen) == {"127.0.0.2", "127.0.0.4"}
    assert abs(seen["127.0.0.2"] - seen["127.0.0.4"]) <= 2


def test_it_sticks_a_session_to_one_agent(server, target):
    for session_id in ("one", "two", "three"):
        assert len(set(exit_ips(server, target, f"{USER}-session-{session_id}", 6))) == 1


def test_it_pins_a_named_agent(server, target):
    assert set(exit_ips(server, target, f"{USER}-agent-pc-b", 6)) == {"127.0.0.4"}
    assert set(exit_ips(server, target, f"{USER}-agent-pc-a", 6)) == {"127.0.0.2"}


def test_it_answers_503_for_a_pinned_agent_that_is_offline(server, target):
    response = requests.get(
        f"{target.url}/ip", proxies=proxies(server, f"{USER}-agent-nobody"), timeout=10
    )
    assert response.status_code == 503
    assert "nobody" in response.text


def test_it_retries_once_on_another_agent_when_the_first_refuses(
    tmp: Path, server, key, target, tls_target, ca_bundle
):
    # This agent's owner did not widen the guard: it refuses every loopback target.
    strict = AgentProcess(tmp, server, key, "pc-strict", "127.0.0.5", allow=()).start()
    try:
        for _ in range(6):
            response = requests.get(
                f"{tls_target.url}/ip", proxies=proxies(server), verify=ca_bundle, timeout=10
            )
            assert response.status_code == 200
            assert response.text in ("127.0.0.2", "127.0.0.4")
        pinned = requests.get(
            f"{target.url}/ip", proxies=proxies(server, f"{USER}-agent-pc-strict"), timeout=10
        )
        assert pinned.status_code == 403
    finally:
        strict.terminate()


async def test_a_paused_engine_gets_no_new_streams_and_resumes(tmp: Path, server, key, target):
    pinned = proxies(server, f"{USER}-agent-pc-pausable")

    def fetch() -> requests.Response:
        return requests.get(f"{target.url}/ip", proxies=pinned, timeout=10)

    async with running_engine(tmp, server, key, "pc-pausable", "127.0.0.6") as engine:
        assert (await asyncio.to_thread(fetch)).text == "127.0.0.6"
        engine.pause()
        paused = await asyncio.to_thread(fetch)
        assert paused.status_code == 503
        assert "paused" in paused.text
        assert paused.headers["X-Exitpool-Error"] == "agent-paused"
        unpinned = await asyncio.to_thread(exit_ips, server, target, USER, 6)
        assert "127.0.0.6" not in unpinned
        engine.resume()
        for _ in range(20):  # the RESUME message races the request to the server
            resumed = await asyncio.to_thread(fetch)
            if resumed.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert resumed.text == "127.0.0.6"


async def test_a_paused_engine_lets_a_running_download_finish(tmp: Path, server, key, target):
    async with running_engine(tmp, server, key, "pc-finisher", "127.0.0.7") as engine:
        size = 400_000
        download = asyncio.create_task(
            asyncio.to_thread(
                requests.get,
                f"{target.url}/slow-bytes/{size}?rate=400000",
                proxies=proxies(server, f"{USER}-agent-pc-finisher"),
                timeout=20,
            )
        )
        await wait_async(lambda: engine.open_streams == 1, "the download to start")
        engine.pause()
        response = await download
        assert response.status_code == 200
        assert len(response.content) == size


async def wait_async(predicate, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_no_stream_lingers_on_the_agent_after_requests_end(
    tmp: Path, server, key, target, tls_target, ca_bundle
):
    route = proxies(server, f"{USER}-agent-pc-tidy")

    def traffic() -> None:
        # the target closes (Connection: close), the user closes (keep-alive), and a tunnel
        requests.get(f"{target.url}/ip", proxies=route, headers={"Connection": "close"}, timeout=10)
        with requests.Session() as session:
            session.proxies = route
            for _ in range(3):
                session.get(f"{target.url}/bytes/1000", timeout=10)
        requests.get(f"{tls_target.url}/ip", proxies=route, verify=ca_bundle, timeout=10)

    async with running_engine(tmp, server, key, "pc-tidy", "127.0.0.12") as engine:
        await asyncio.to_thread(traffic)
        assert engine.stats()["streams_total"] == 3
        await wait_async(lambda: engine.open_streams == 0, "every stream to end", timeout=10)


async def test_a_user_who_stops_reading_stops_the_agent_reading_the_target(
    tmp: Path, server, key, target
):
    """Credit windows carry backpressure from the user's socket back to the target's."""
    size = 200_000_000
    async with running_engine(tmp, server, key, "pc-backpressure", "127.0.0.13") as engine:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.proxy_port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        auth = requests.auth._basic_auth_str(f"{USER}-agent-pc-backpressure", "s3cret-pw")
        writer.write(
            f"GET {target.url}/bytes/{size} HTTP/1.1\r\nHost: 127.0.0.3\r\n"
            f"Proxy-Authorization: {auth}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readexactly(100_000)
        await asyncio.sleep(1.5)  # the user stops reading; everything upstream must stall
        (link,) = engine._relay.links  # type: ignore[union-attr]
        carried = link.sender.sent
        await asyncio.sleep(0.5)
        assert link.sender.sent == carried, "the agent kept sending to a stalled user"
        # window + the server's socket buffers (the kernel grows them to a few MB)
        assert carried < 10_000_000, f"{carried} bytes in flight for a stalled user"
        writer.close()

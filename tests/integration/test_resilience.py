"""Things go wrong: agents die, the server restarts, credentials are revoked."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
import requests

from tests.integration.conftest import OPEN_TIMEOUT, USER, proxies
from tests.support.processes import AgentProcess, ServerProcess, enroll_raw_agent, wait_for


def test_agents_reconnect_by_themselves_after_the_server_restarts(
    server: ServerProcess, agent_a: AgentProcess, target
):
    online_before = agent_a.count("online as")
    assert server.terminate() == 0
    assert "closing 1 agent" in server.log() or "closing 2 agent" in server.log()
    server.start()
    agent_a.wait_online(online_before, timeout=30)
    response = requests.get(
        f"{target.url}/ip", proxies=proxies(server, f"{USER}-agent-pc-a"), timeout=10
    )
    assert response.text == "127.0.0.2"


async def test_sigterm_closes_agents_with_1001(tmp_path: Path):
    lonely = ServerProcess(tmp_path)
    enroll = lonely.enrollment_key()
    lonely.start()
    try:
        async with aiohttp.ClientSession() as http:
            ws, welcome = await enroll_raw_agent(http, lonely, enroll, "probe")
            assert str(welcome["credential"]).startswith("epa_")
            started = time.monotonic()
            lonely.proc.send_signal(15)  # type: ignore[union-attr]
            message = await ws.receive(timeout=10)
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert message.data == 1001
            assert time.monotonic() - started < 5
        assert await asyncio.to_thread(lonely.proc.wait, 10) == 0  # type: ignore[union-attr]
    finally:
        lonely.terminate()


async def test_an_unknown_credential_or_key_is_refused_at_the_handshake(server: ServerProcess):
    async with aiohttp.ClientSession() as http:
        for headers in (
            {"Authorization": "Bearer epa_not-a-real-credential"},
            {"X-Exitpool-Enrollment-Key": "epk_not-a-real-key"},
            {},
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.ws_url, headers=headers)
            assert refused.value.status == 403


def test_a_revoked_agent_is_refused_when_it_reconnects(tmp: Path, server: ServerProcess, key: str):
    agent = AgentProcess(tmp, server, key, "pc-revoked", "127.0.0.10").start()
    agent.terminate()
    assert "revoked agent pc-revoked" in server.cli("revokeagent", "pc-revoked")
    agent.start(wait_online=False)
    try:
        wait_for(lambda: "refused this agent's credential" in agent.log(), 20, "the refusal")
        assert "online as" not in agent.log().split("revoked")[-1]
    finally:
        agent.terminate()


def test_an_agent_keeps_its_credential_and_does_not_enroll_again(
    tmp: Path, server: ServerProcess, key: str
):
    agent = AgentProcess(tmp, server, key, "pc-keeper", "127.0.0.11").start()
    agent.terminate()
    agent.key = "epk_this-key-does-not-exist"  # only the saved credential can work now
    agent.start()
    agent.terminate()
    assert agent.count("enrolled as pc-keeper") == 1
    assert agent.count("online as pc-keeper") == 2


async def test_an_agent_that_never_answers_an_open_gets_the_user_a_504(
    server: ServerProcess, key: str
):
    async with aiohttp.ClientSession() as http:
        ws, _ = await enroll_raw_agent(http, server, key, "mute")
        started = time.monotonic()
        response = await asyncio.to_thread(
            requests.get,
            "http://127.0.0.3:9/",
            proxies=proxies(server, f"{USER}-agent-mute"),
            timeout=20,
        )
        assert response.status_code == 504
        assert response.headers["X-Exitpool-Error"] == "agent-timeout"
        assert OPEN_TIMEOUT <= time.monotonic() - started < OPEN_TIMEOUT + 3
        await ws.close()

"""The engine's heartbeat and reconnect, against a WebSocket peer that goes silent.

The peer is a bare aiohttp WebSocket server on 127.0.0.1 that welcomes the
agent and then never answers a ping: the engine must declare the connection
dead after ``ping_timeout`` and connect again by itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web

from desktop_agent.engine.client import AgentEngine, Status
from desktop_agent.engine.config import AgentConfig


async def start_silent_server() -> tuple[web.AppRunner, int, list[float]]:
    connects: list[float] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)  # pings go unanswered
        await ws.prepare(request)
        connects.append(asyncio.get_running_loop().time())
        hello = await ws.receive()
        assert json.loads(hello.data)["type"] == "hello"
        await ws.send_str(json.dumps({"type": "welcome", "agent_id": 1, "name": "silent-test"}))
        async for message in ws:
            if message.type is WSMsgType.CLOSE:
                break
        return ws

    app = web.Application()
    app.router.add_get("/ws/agent", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port, connects


async def test_it_declares_a_silent_server_dead_and_reconnects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner, port, connects = await start_silent_server()
    config = AgentConfig(
        server_url=f"ws://127.0.0.1:{port}/ws/agent",
        enrollment_key="epk_test",
        config_dir=tmp_path,
        ping_interval=0.2,
        ping_timeout=0.2,
        backoff_initial=0.1,
    )
    engine = AgentEngine(config)
    statuses: list[Status] = []
    engine.add_listener(lambda e: statuses.append(e.status))
    task = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(10):
            while len(connects) < 2:
                await asyncio.sleep(0.02)
        # welcomed, then silent: dead within one ping interval plus the timeout
        assert 0.3 < connects[1] - connects[0] < 2.0
        assert statuses[:3] == [Status.CONNECTING, Status.ONLINE, Status.CONNECTING]
        assert "no answer from the server for 0.2s after a ping" in caplog.text
    finally:
        engine.stop()
        await asyncio.wait_for(task, 5)
        await runner.cleanup()

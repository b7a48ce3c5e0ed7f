"""Test connection against addresses that are not (or not quite) an Exitpool server.

The answers from a real server (accepted, bad key, revoked, unreachable) are
tested in tests/integration/test_agent_owner_rules.py; here are the failures
a real server never produces: an untrusted certificate, a web server that is
something else, and an older server that waits for a HELLO.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from aiohttp import web

from desktop_agent.engine.check import CHECK_HEADER, check_connection
from desktop_agent.engine.problems import Problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler | None = None, tls: ssl.SSLContext | None = None) -> int:
        app = web.Application()
        if handler is not None:
            app.router.add_get("/ws/agent", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        runners.append(runner)
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_an_untrusted_certificate_is_a_tls_problem(serve: Callable[..., Awaitable[int]]):
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(tls)
    port = await serve(tls=tls)

    check = await check_connection(f"https://127.0.0.1:{port}", "epk_key", timeout=5)

    assert (check.ok, check.problem) == (False, Problem.TLS)
    assert f"the certificate of 127.0.0.1:{port} is not trusted" in check.message


async def test_a_web_server_without_the_agent_endpoint_is_not_an_exitpool_server(
    serve: Callable[..., Awaitable[int]],
):
    port = await serve()

    check = await check_connection(f"http://127.0.0.1:{port}", "epk_key", timeout=5)

    assert (check.ok, check.problem) == (False, Problem.UNREACHABLE)
    assert check.message == (f"127.0.0.1:{port} is not an Exitpool server (it answered HTTP 404)")


async def test_a_server_that_waits_for_a_hello_is_not_sent_one(
    serve: Callable[..., Awaitable[int]],
):
    seen: list[str] = []

    async def older_server(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers[CHECK_HEADER])
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:  # a HELLO would enroll: it must never come
            seen.append(message.data)
        return ws

    port = await serve(older_server)

    check = await check_connection(f"http://127.0.0.1:{port}", "epk_key", timeout=0.5)

    assert (check.ok, check.problem) == (False, Problem.UNREACHABLE)
    assert "did not answer the check in time" in check.message
    assert seen == ["1"]


async def test_an_address_that_is_no_url_is_explained() -> None:
    check = await check_connection("exitpool.example.com", "epk_key")

    assert (check.ok, check.problem) == (False, Problem.UNREACHABLE)
    assert "server URL must be ws://, wss://, http:// or https://" in check.message

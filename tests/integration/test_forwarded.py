"""Behind nginx: the agent's real exit IP comes from X-Forwarded-For, but only via a trusted proxy.

The "proxy" here is simply a client on 127.0.0.1 that sends the headers nginx
would send (the forwarded addresses are only header values, nothing is dialled);
an untrusted peer is a client bound to 127.0.0.2.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import SERVER_BIN, ServerProcess

AGENT_EXIT = "203.0.113.7"
LOOPBACK_ANY_PORT = ("--http", "127.0.0.1:0", "--proxy", "127.0.0.1:0")


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("behind-nginx"),
        env={"EXITPOOL_TRUSTED_PROXIES": "127.0.0.1", "EXITPOOL_HSTS_SECONDS": "3600"},
    )
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def nginx_key(behind_nginx: ServerProcess) -> str:
    return behind_nginx.enrollment_key("forwarded")


async def welcome_from(
    server: ServerProcess, key: str, name: str, source: str, headers: dict[str, str]
) -> dict[str, object]:
    """Enroll a bare protocol client connecting from ``source``; returns its WELCOME."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.ws_connect(server.ws_url, headers={"X-Exitpool-Enrollment-Key": key, **headers}) as ws,
    ):
        await ws.send_str(f'{{"type":"hello","version":1,"name":"{name}"}}')
        welcome: dict[str, object] = await ws.receive_json(timeout=10)
    assert welcome["type"] == "welcome", welcome
    return welcome


async def test_an_agent_behind_the_trusted_proxy_is_recorded_with_its_own_exit_ip(
    behind_nginx: ServerProcess, nginx_key: str
) -> None:
    welcome = await welcome_from(
        behind_nginx, nginx_key, "via-nginx", "127.0.0.1", {"X-Forwarded-For": AGENT_EXIT}
    )
    assert welcome["exit_ip"] == AGENT_EXIT
    assert f"agent via-nginx online from {AGENT_EXIT}" in behind_nginx.log()


async def test_what_the_agent_itself_wrote_into_the_header_is_not_believed(
    behind_nginx: ServerProcess, nginx_key: str
) -> None:
    # The agent sent "X-Forwarded-For: 198.51.100.66"; nginx appended the address it saw.
    chain = f"198.51.100.66, {AGENT_EXIT}"
    welcome = await welcome_from(
        behind_nginx, nginx_key, "forger", "127.0.0.1", {"X-Forwarded-For": chain}
    )
    assert welcome["exit_ip"] == AGENT_EXIT


async def test_an_untrusted_peers_forwarded_for_is_ignored(
    behind_nginx: ServerProcess, nginx_key: str
) -> None:
    welcome = await welcome_from(
        behind_nginx, nginx_key, "direct", "127.0.0.2", {"X-Forwarded-For": AGENT_EXIT}
    )
    assert welcome["exit_ip"] == "127.0.0.2"


async def test_without_trusted_proxies_nobody_is_believed(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    key = server.enrollment_key()
    server.start()
    try:
        welcome = await welcome_from(
            server, key, "no-proxy", "127.0.0.1", {"X-Forwarded-For": AGENT_EXIT}
        )
    finally:
        server.terminate()
    assert welcome["exit_ip"] == "127.0.0.1"


async def hsts_header(server: ServerProcess, source: str, headers: dict[str, str]) -> str | None:
    """Django sends HSTS only on requests it considers HTTPS: a window on the scheme it saw."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"{server.http_url}/admin/login/", headers=headers) as response,
    ):
        assert response.status == 200
        return response.headers.get("Strict-Transport-Security")


async def test_django_sees_https_when_the_trusted_proxy_says_so(
    behind_nginx: ServerProcess,
) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": AGENT_EXIT}
    assert await hsts_header(behind_nginx, "127.0.0.1", https) == "max-age=3600"
    assert await hsts_header(behind_nginx, "127.0.0.1", {}) is None


async def test_django_ignores_an_untrusted_peers_proto(behind_nginx: ServerProcess) -> None:
    https = {"X-Forwarded-Proto": "https"}
    assert await hsts_header(behind_nginx, "127.0.0.2", https) is None


def test_a_bad_trusted_proxies_entry_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [SERVER_BIN, "run", "--data-dir", str(tmp_path), *LOOPBACK_ANY_PORT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "EXITPOOL_TRUSTED_PROXIES": "127.0.0.1, nginx.internal"},
    )
    assert done.returncode != 0
    assert "EXITPOOL_TRUSTED_PROXIES: 'nginx.internal' is not an IP address" in done.stderr
    assert "Exitpool server ready" not in done.stdout

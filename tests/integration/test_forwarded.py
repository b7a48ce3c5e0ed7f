"""Behind nginx: the agent's real exit IP comes from X-Forwarded-For, but only via a trusted proxy.

The "proxy" here is simply a client on 127.0.0.1 that sends the headers nginx
would send (the forwarded addresses are only header values, nothing is dialled);
an untrusted peer is a client bound to 127.0.0.2.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import requests
import trustme

from tests.support.processes import SERVER_BIN, AgentProcess, ServerProcess, wait_for
from tests.support.target import free_port

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


# ------------------------------------------------------------------ the shipped nginx config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def shipped_nginx_config(tmp: Path, cert: str, key: str, web_port: int) -> tuple[Path, int]:
    """deploy/nginx-exitpool.conf as shipped, moved onto loopback ports and test certificates."""
    https_port, http_port = free_port(), free_port()
    site = (DEPLOY / "nginx-exitpool.conf").read_text()
    for shipped, here in [
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:443 ssl;", ""),
        ("listen [::]:80;", ""),
        ("/etc/letsencrypt/live/exitpool.example.com/fullchain.pem", cert),
        ("/etc/letsencrypt/live/exitpool.example.com/privkey.pem", key),
        ("http://127.0.0.1:8000", f"http://127.0.0.1:{web_port}"),
    ]:
        assert shipped in site, f"the shipped config no longer has {shipped!r}"
        site = site.replace(shipped, here)
    (tmp / "exitpool.conf").write_text(site)
    main = tmp / "nginx.conf"
    main.write_text(
        f"pid {tmp}/nginx.pid;\n"
        "events {}\n"
        f"http {{ access_log off; include {tmp}/exitpool.conf; }}\n"
    )
    return main, https_port


@pytest.fixture
def nginx_in_front(behind_nginx: ServerProcess, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Real nginx with the shipped config on 127.0.0.1; yields (its https:// URL, CA file)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        pytest.skip("nginx is not installed (apt-get install nginx)")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server_pem = str(tmp_path / "server.pem")
    conf, port = shipped_nginx_config(tmp_path, server_pem, server_pem, behind_nginx.http_port)
    args = [nginx, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([*args, "-g", "daemon off;"])
    try:
        wait_for(lambda: port_open(port), 10, "nginx to listen")
        yield f"https://127.0.0.1:{port}", str(tmp_path / "ca.pem")
    finally:
        process.terminate()
        process.wait(10)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Through:
    """What an agent needs to know of a server: the URL it connects to."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url


def test_through_the_shipped_nginx_config_an_agent_keeps_its_exit_ip(
    behind_nginx: ServerProcess,
    nginx_key: str,
    nginx_in_front: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    https_url, ca_file = nginx_in_front
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)  # the agent trusts the test CA
    through = Through(f"wss{https_url.removeprefix('https')}/ws/agent")
    agent = AgentProcess(tmp_path, through, nginx_key, "pc-tls", "127.0.0.2")  # type: ignore[arg-type]
    agent.start()
    try:
        assert "exit IP seen by the server: 127.0.0.2" in agent.log()
        assert "agent pc-tls online from 127.0.0.2" in behind_nginx.log()
    finally:
        agent.terminate()


def test_through_the_shipped_nginx_config_an_admin_logs_in_over_https(
    behind_nginx: ServerProcess, nginx_in_front: tuple[str, str]
) -> None:
    https_url, ca_file = nginx_in_front
    password = re.search(r"user admin, password: (\S+)", behind_nginx.log())
    assert password, behind_nginx.log()
    with requests.Session() as browser:
        form = browser.get(f"{https_url}/admin/login/", verify=ca_file, timeout=10)
        assert form.headers.get("Strict-Transport-Security") == "max-age=3600"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text
        page = browser.post(
            f"{https_url}/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": "admin",
                "password": password.group(1),
                "next": "/admin/",
            },
            headers={"Origin": https_url, "Referer": f"{https_url}/admin/login/"},
            verify=ca_file,  # per request: REQUESTS_CA_BUNDLE would beat a session's verify
            timeout=10,
        )
    assert page.status_code == 200, page.text
    assert page.url == f"{https_url}/admin/"
    assert "Log out" in page.text

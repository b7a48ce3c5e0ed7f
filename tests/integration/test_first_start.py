"""A newcomer's first start: an admin account whose password is printed once, and the banner."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import requests

from tests.support.processes import SERVER_BIN, ServerProcess

LOOPBACK_ANY_PORT = ("--http", "127.0.0.1:0", "--proxy", "127.0.0.1:0")
PRINTED_PASSWORD = re.compile(r"first admin account created: user admin, password: (\S+)")


def log_in(server: ServerProcess, user: str, password: str) -> requests.Response:
    """Log in through the admin's own login form, CSRF token and all; returns the last page."""
    with requests.Session() as browser:
        form = browser.get(f"{server.http_url}/admin/login/?next=/admin/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text
        return browser.post(
            f"{server.http_url}/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": user,
                "password": password,
                "next": "/admin/",
            },
            timeout=10,
        )


def logged_in(page: requests.Response) -> bool:
    return page.url.endswith("/admin/") and "Log out" in page.text


def test_a_fresh_server_prints_an_admin_password_once_and_it_logs_in(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        printed = PRINTED_PASSWORD.findall(server.log())
        assert len(printed) == 1, server.log()
        password = printed[0]
        assert "changepassword admin" in server.log()
        assert logged_in(log_in(server, "admin", password))
        assert not logged_in(log_in(server, "admin", password + "x"))
        server.terminate()
        server.start()
    finally:
        server.terminate()
    log = server.log()
    assert log.count("Exitpool server ready") == 2
    assert PRINTED_PASSWORD.findall(log) == [password], "a restart printed a password again"
    assert log.count(password) == 1
    assert "log in with an admin account" in log.split("Exitpool server ready")[-1]
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), f"{path} keeps the password"


def test_the_banner_shows_the_agent_command_line_and_the_proxy(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    server.terminate()
    banner = server.log().split("Exitpool server ready")[-1]
    agents = f"ws://127.0.0.1:{server.http_port}/ws/agent"
    assert f"exitpool-agent --headless --server {agents} --key KEY" in banner
    assert f"--data-dir {server.data_dir} enrollkey" in banner
    assert f"http://127.0.0.1:{server.http_port}/dashboard/" in banner
    assert f"http://USER:PASSWORD@127.0.0.1:{server.proxy_port}" in banner
    assert "proxyuser NAME" in banner


def test_a_chosen_admin_password_is_used_and_not_printed(tmp_path: Path) -> None:
    chosen = "correct horse battery staple"
    server = ServerProcess(
        tmp_path,
        env={
            "EXITPOOL_ADMIN_PASSWORD": chosen,
            "EXITPOOL_PUBLIC_URL": "https://exitpool.example.com",
        },
    ).start()
    try:
        assert logged_in(log_in(server, "admin", chosen))
    finally:
        server.terminate()
    log = server.log()
    assert chosen not in log
    assert "with the password set in EXITPOOL_ADMIN_PASSWORD" in log
    assert not PRINTED_PASSWORD.search(log)
    # Behind a reverse proxy the banner gives the public addresses, not the local listener.
    assert "https://exitpool.example.com/admin/" in log
    assert "--server wss://exitpool.example.com/ws/agent" in log
    assert f"http://USER:PASSWORD@exitpool.example.com:{server.proxy_port}" in log


def test_a_weak_chosen_admin_password_stops_the_first_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [SERVER_BIN, "run", "--data-dir", str(tmp_path), *LOOPBACK_ANY_PORT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "EXITPOOL_ADMIN_PASSWORD": "12345678"},
    )
    assert done.returncode != 0
    assert "EXITPOOL_ADMIN_PASSWORD" in done.stderr
    assert "too common" in done.stderr
    assert "Exitpool server ready" not in done.stdout


def test_scripted_deployments_can_turn_the_first_admin_off(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"EXITPOOL_CREATE_ADMIN": "0"}).start()
    server.terminate()
    assert "no admin account yet" in server.log()
    assert not PRINTED_PASSWORD.search(server.log())
    # No "admin" was made behind our back: the name is free for the deployment's own account.
    server.cli("createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.com")


def test_accounts_made_before_the_first_start_stop_the_automatic_one(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    server.cli("migrate", "-v", "0")
    server.cli("createsuperuser", "--noinput", "--username", "root", "--email", "r@example.com")
    server.start()
    server.terminate()
    assert not PRINTED_PASSWORD.search(server.log())
    assert "log in with an admin account" in server.log()


def test_a_start_that_fails_does_not_use_up_the_first_admin(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proxy_port = taken.getsockname()[1]
        addresses = ("--http", "127.0.0.1:0", "--proxy", f"127.0.0.1:{proxy_port}")
        failed = subprocess.run(
            [SERVER_BIN, "run", "--data-dir", str(server.data_dir), *addresses],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert failed.returncode != 0
    assert "cannot listen for proxy users" in failed.stderr
    server.start()
    server.terminate()
    assert len(PRINTED_PASSWORD.findall(server.log())) == 1, server.log()

"""The ``exitpool-server`` commands an admin types."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import SERVER_BIN, ServerProcess, enroll_raw_agent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SERVER_BIN, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_it_creates_the_secret_key_once_readable_only_by_its_owner(tmp_path: Path):
    data = tmp_path / "data"
    assert run("--data-dir", str(data), "migrate", "-v", "0").returncode == 0
    key_file = data / "secret_key"
    first = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert run("--data-dir", str(data), "check").returncode == 0
    assert key_file.read_text() == first
    assert (data / "exitpool.sqlite3").exists()


def test_it_honours_database_url(tmp_path: Path):
    elsewhere = tmp_path / "elsewhere.sqlite3"
    done = run(
        "--data-dir",
        str(tmp_path / "data"),
        "migrate",
        "-v",
        "0",
        env={"DATABASE_URL": f"sqlite:///{elsewhere}"},
    )
    assert done.returncode == 0, done.stderr
    assert elsewhere.exists()
    assert not (tmp_path / "data" / "exitpool.sqlite3").exists()


def test_proxyuser_prints_the_password_and_updates_an_existing_user(tmp_path: Path):
    data = ["--data-dir", str(tmp_path)]
    created = run(*data, "proxyuser", "bob")
    assert created.returncode == 0
    assert created.stdout.splitlines()[0] == "created proxy user bob"
    generated = created.stdout.splitlines()[1].removeprefix("password: ")
    assert len(generated) >= 12
    updated = run(*data, "proxyuser", "bob", "--password", "chosen")
    assert updated.stdout.splitlines() == ["updated proxy user bob", "password: chosen"]


def test_proxyuser_prints_an_api_token_for_a_new_user_and_replaces_it_on_demand(tmp_path: Path):
    data = ["--data-dir", str(tmp_path)]
    created = run(*data, "proxyuser", "carol", "--password", "first").stdout.splitlines()
    assert created[:2] == ["created proxy user carol", "password: first"]
    first = created[2].removeprefix("api token: ")
    assert first.startswith("ept_") and len(first) > 40
    replaced = run(*data, "proxyuser", "carol", "--new-token").stdout.splitlines()
    assert replaced[0] == "updated proxy user carol"
    assert len(replaced) == 2  # no password line: the password is kept
    second = replaced[1].removeprefix("api token: ")
    assert second.startswith("ept_") and second != first

    def check(expression: str) -> str:
        script = f"from server.fleet.models import ProxyUser as U; print({expression})"
        return run(*data, "shell", "-c", script).stdout.strip().splitlines()[-1]

    assert check(f"U.by_api_token({first!r})") == "None"
    assert check(f"U.by_api_token({second!r})") == "carol"
    assert check("U.authenticate('carol', 'first')") == "carol"
    # Without --new-token the token stays as it was.
    assert "api token" not in run(*data, "proxyuser", "carol").stdout
    assert check(f"U.by_api_token({second!r})") == "carol"


@pytest.mark.parametrize("name", ["bad name", "x-session-y", "a-agent-b", ""])
def test_proxyuser_refuses_names_that_break_routing_or_basic_auth(tmp_path: Path, name: str):
    done = run("--data-dir", str(tmp_path), "proxyuser", name)
    assert done.returncode != 0
    assert "invalid name" in done.stderr


def test_enrollkey_prints_the_key_as_the_last_line(tmp_path: Path):
    done = run("--data-dir", str(tmp_path), "enrollkey", "--label", "Berlin office")
    assert done.returncode == 0
    assert done.stdout.strip().splitlines()[-1].startswith("epk_")


def test_every_django_command_works_through_it(tmp_path: Path):
    done = run("--data-dir", str(tmp_path), "help")
    assert done.returncode == 0
    for command in ("createsuperuser", "migrate", "proxyuser", "enrollkey", "run"):
        assert command in done.stdout


async def test_agents_asking_for_a_taken_name_get_a_unique_one(tmp_path: Path):
    server = ServerProcess(tmp_path)
    key = server.enrollment_key()
    server.start()
    names = []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                ws, welcome = await enroll_raw_agent(http, server, key, "front-desk")
                names.append(welcome["name"])
                await ws.close()
    finally:
        server.terminate()
    assert names == ["front-desk", "front-desk-2"]

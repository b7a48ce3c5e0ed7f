"""The admin at /admin/ against a running server, real agents and a real target.

An admin logs in through the login form (with its CSRF token) and posts the
same forms a browser would; what the admin did is then checked where it
matters: in what the proxy answers and in what the agents' own logs say.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import PASSWORD, USER, proxies
from tests.support.admin_browser import Admin, row
from tests.support.processes import AgentProcess, ServerProcess, wait_for
from tests.support.raw_proxy import open_tunnel

ROOT, ROOT_PASSWORD = "root", "admin-pw-for-tests"
FLUSH_INTERVAL = 1.0
QUICK = 1.0
"""Seconds within which an admin action must reach a live agent."""

pytestmark = pytest.mark.usefixtures("agent_a")


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp,
        env={"EXITPOOL_FLUSH_INTERVAL": str(FLUSH_INTERVAL)},
    )
    process.cli("proxyuser", USER, "--password", PASSWORD)
    process.create_admin(ROOT, ROOT_PASSWORD)
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[Admin]:
    with requests.Session() as http:
        yield Admin(server, http, ROOT, ROOT_PASSWORD)


def shown_secrets(page: str) -> dict[str, str]:
    pairs = re.findall(r'<h3>([^<]+)</h3>\s*<code class="secret">([^<]+)</code>', page)
    return {label: html.unescape(value) for label, value in pairs}


def fetch(server: ServerProcess, target, user: str, password: str = PASSWORD) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.get(
        f"{target.url}/ip",
        proxies=proxies(server, user, password),
        headers={"Connection": "close"},
        timeout=10,
    )


@contextlib.contextmanager
def running_agent(tmp: Path, server: ServerProcess, key: str, name: str, source: str):  # type: ignore[no-untyped-def]
    agent = AgentProcess(tmp, server, key, name, source).start()
    try:
        yield agent
    finally:
        agent.terminate()


# ---------------------------------------------------------------------------- agents


def test_the_agent_list_shows_a_live_agent_online_with_its_exit_ip(admin: Admin):
    cells = admin.agent_row("pc-a")
    assert "online for" in cells
    assert "127.0.0.2" in cells
    assert "pc-a" in admin.get("/admin/fleet/agent/?connection=online").text


def test_a_paused_agent_gets_no_streams_even_after_a_reconnect_until_resumed(
    tmp: Path, server: ServerProcess, key: str, target, admin: Admin
):
    pinned = f"{USER}-agent-pc-pause"
    with running_agent(tmp, server, key, "pc-pause", "127.0.0.5") as agent:
        assert fetch(server, target, pinned).text == "127.0.0.5"
        agent_id = admin.agent_id("pc-pause")

        page = admin.agent_action("pause", agent_id)
        assert "Paused 1 agent (1 online" in page.text
        refused = fetch(server, target, pinned)  # the action answered once the hub knew
        assert refused.status_code == 503
        assert refused.headers["X-Exitpool-Error"] == "agent-paused"
        assert "paused" in refused.text
        assert {fetch(server, target, USER).text for _ in range(4)} == {"127.0.0.2"}
        assert "paused by admin" in admin.agent_row("pc-pause")
        wait_for(lambda: "the server's admin paused this agent" in agent.log(), QUICK, "log")

        online_before = agent.count("online as")
        assert "Disconnected 1 of 1 agent" in admin.agent_action("disconnect", agent_id).text
        agent.wait_online(online_before, timeout=15)
        assert fetch(server, target, pinned).status_code == 503
        assert "paused by admin" in admin.agent_row("pc-pause")

        admin.agent_action("resume", agent_id)
        assert fetch(server, target, pinned).text == "127.0.0.5"
        assert "online for" in admin.agent_row("pc-pause")


def test_a_revoked_agent_is_cut_off_at_once_and_refused_when_it_reconnects(
    tmp: Path, server: ServerProcess, key: str, target, admin: Admin
):
    with running_agent(tmp, server, key, "pc-revoke", "127.0.0.6") as agent:
        agent_id = admin.agent_id("pc-revoke")
        page = admin.agent_action("revoke", agent_id)
        assert "Revoked 1 agent (1 online, cut off now)" in page.text
        wait_for(lambda: "(close code 4001)" in agent.log(), QUICK, "the agent to be cut off")
        wait_for(
            lambda: "the server refused this agent's credential" in agent.log(),
            10,
            "the reconnect to be refused",
        )
        assert "online as" not in agent.log().split("close code 4001")[-1]
        assert fetch(server, target, f"{USER}-agent-pc-revoke").status_code == 503
        assert "revoked" in admin.agent_row("pc-revoke")


def test_revokeagent_in_a_shell_cuts_off_an_agent_of_the_running_server(
    tmp: Path, server: ServerProcess, key: str
):
    with running_agent(tmp, server, key, "pc-shell", "127.0.0.7") as agent:
        assert "revoked agent pc-shell" in server.cli("revokeagent", "pc-shell")
        wait_for(
            lambda: "(close code 4001)" in agent.log(),
            FLUSH_INTERVAL + 1.5,
            "the server to cut the agent off at its next flush",
        )


# ----------------------------------------------------------------------- proxy users


def test_a_user_added_in_the_admin_sees_password_and_token_once_and_only_hashes_are_kept(
    server: ServerProcess, target, admin: Admin
):
    page = admin.post(
        "/admin/fleet/proxyuser/add/",
        {"name": "bob", "new_password": "", "is_active": "on", "_save": "Save"},
    )
    secrets = shown_secrets(page.text)
    password, token = secrets["Password"], secrets["API token"]
    assert "no-store" in page.headers["Cache-Control"]
    assert fetch(server, target, "bob", password).text == "127.0.0.2"
    assert api_usage(server, token).json()["user"] == "bob"

    user_page = admin.get(f"/admin/fleet/proxyuser/{admin.user_id('bob')}/change/").text
    assert token not in user_page
    assert password not in user_page
    stored = b"".join(p.read_bytes() for p in server.data_dir.glob("exitpool.sqlite3*"))
    assert token.encode() not in stored
    assert password.encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored


def api_usage(server: ServerProcess, token: str) -> requests.Response:
    return requests.get(
        f"{server.http_url}/api/v1/usage", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_a_new_api_token_from_the_admin_replaces_the_old_one_at_once(
    server: ServerProcess, admin: Admin
):
    page = admin.post(
        "/admin/fleet/proxyuser/add/",
        {"name": "erin", "new_password": "erin-pw", "is_active": "on", "_save": "Save"},
    )
    old = shown_secrets(page.text)["API token"]
    assert api_usage(server, old).status_code == 200  # now cached by the server
    page = admin.post(f"/admin/fleet/proxyuser/{admin.user_id('erin')}/credentials/token/", {})
    new = shown_secrets(page.text)["API token"]
    assert api_usage(server, old).status_code == 401
    assert api_usage(server, new).json()["user"] == "erin"


def test_a_password_reset_in_the_admin_refuses_the_old_password_at_once(
    server: ServerProcess, target, admin: Admin
):
    admin.post(
        "/admin/fleet/proxyuser/add/",
        {"name": "carol", "new_password": "first-pw", "is_active": "on", "_save": "Save"},
    )
    assert fetch(server, target, "carol", "first-pw").status_code == 200  # now cached
    page = admin.post(f"/admin/fleet/proxyuser/{admin.user_id('carol')}/credentials/password/", {})
    new_password = shown_secrets(page.text)["Password"]
    assert fetch(server, target, "carol", "first-pw").status_code == 407
    assert fetch(server, target, "carol", new_password).status_code == 200


def test_a_stream_limit_saved_in_the_admin_is_enforced_at_once(
    server: ServerProcess, target, admin: Admin
):
    admin.post(
        "/admin/fleet/proxyuser/add/",
        {"name": "dave", "new_password": "dave-pw", "is_active": "on", "_save": "Save"},
    )
    with tunnel(server, target, "dave", "dave-pw") as first:
        assert first.startswith(b"HTTP/1.1 200")
        with tunnel(server, target, "dave", "dave-pw") as second:
            assert second.startswith(b"HTTP/1.1 200")  # the default limit allows both

    user_id = admin.user_id("dave")
    admin.http.post(
        f"{admin.url}/admin/fleet/proxyuser/{user_id}/change/",
        data={
            "csrfmiddlewaretoken": admin.http.cookies["csrftoken"],
            "name": "dave",
            "is_active": "on",
            "max_streams": "1",
            "monthly_quota_bytes": "",
            "_save": "Save",
        },
        timeout=10,
    ).raise_for_status()
    wait_for(  # the two tunnels above have ended on the server's side too
        lambda: "0 of 1" in row(admin.get("/admin/fleet/proxyuser/?q=dave").text, "dave"),
        5,
        "dave's open streams to drop to 0",
    )
    with tunnel(server, target, "dave", "dave-pw") as first:
        assert first.startswith(b"HTTP/1.1 200")
        with tunnel(server, target, "dave", "dave-pw") as second:
            assert second.startswith(b"HTTP/1.1 429")
            assert b"X-Exitpool-Error: too-many-streams" in second


@contextlib.contextmanager
def tunnel(server: ServerProcess, target, user: str, password: str) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    """A CONNECT tunnel to the target, open while in the block; yields the proxy's answer."""
    sock, answer = open_tunnel(server, user, password, f"127.0.0.3:{target.port}")
    with sock:
        yield answer


# ------------------------------------------------------------------- enrollment keys


def test_an_enrollment_key_added_in_the_admin_is_shown_once_and_enrolls_an_agent(
    tmp: Path, server: ServerProcess, admin: Admin
):
    page = admin.post("/admin/fleet/enrollmentkey/add/", {"label": "third floor", "_save": "Save"})
    raw = shown_secrets(page.text)["Enrollment key"]
    command = f"exitpool-agent --headless --server {server.ws_url} --key {raw}"
    assert command in html.unescape(page.text)

    with running_agent(tmp, server, raw, "pc-newkey", "127.0.0.8") as agent:
        assert "enrolled as pc-newkey" in agent.log()
        keys = admin.get("/admin/fleet/enrollmentkey/?q=third").text
        assert re.search(r"third floor 1 ", row(keys, raw[:10]))
        assert raw not in keys

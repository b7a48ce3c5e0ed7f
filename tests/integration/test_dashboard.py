"""``/dashboard/`` and ``/dashboard/data.json`` against a real server, agent and target.

Who may see it (staff only, through the admin's login), what the snapshot says
about a live agent and the traffic it carried, and that a logged-in page keeps
getting answers across a server restart.
"""

from __future__ import annotations

import base64
import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import PASSWORD, USER
from tests.support.processes import AgentProcess, ServerProcess, wait_for
from tests.support.target import TargetProcess

ADMIN, ADMIN_PASSWORD = "boss", "dashboard-pw-1"
FORMER = "former-staff"


def fetch_once(server: ServerProcess, url: str) -> int:
    """One proxied GET on its own connection, closed after the response; returns the status.

    (A ``requests`` call may leave its connection idle in a pool, and a proxied
    connection is logged when it ends.)
    """
    connection = http.client.HTTPConnection("127.0.0.1", server.proxy_port, timeout=10)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    try:
        connection.request("GET", url, headers={"Proxy-Authorization": f"Basic {auth}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def logged_in(server: ServerProcess, username: str, password: str) -> requests.Session:
    """A browser-like session that went through the admin's login form."""
    session = requests.Session()
    login = f"{server.http_url}/admin/login/?next=/dashboard/"
    form = session.get(login, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None, form.text
    answer = session.post(
        login,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/dashboard/",
        },
        timeout=10,
    )
    assert answer.url == f"{server.http_url}/dashboard/", answer.text
    return session


def snapshot(session: requests.Session, server: ServerProcess) -> dict[str, Any]:
    answer = session.get(f"{server.http_url}/dashboard/data.json", timeout=10)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def agent_named(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((agent for agent in data["agents"] if agent["name"] == name), None)


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp, env={"EXITPOOL_FLUSH_INTERVAL": "1"})
    process.cli("migrate", "--verbosity", "0")
    for name in (ADMIN, FORMER):
        process.create_admin(name, ADMIN_PASSWORD)
    process.cli("proxyuser", USER, "--password", PASSWORD)
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def staff(server: ServerProcess) -> requests.Session:
    return logged_in(server, ADMIN, ADMIN_PASSWORD)


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/data.json"])
def test_it_sends_anonymous_visitors_to_the_admin_login(server: ServerProcess, path: str) -> None:
    answer = requests.get(f"{server.http_url}{path}", allow_redirects=False, timeout=10)

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login/?next=/dashboard/")


def test_it_serves_staff_the_page_and_its_own_assets(
    server: ServerProcess, staff: requests.Session
) -> None:
    page = staff.get(f"{server.http_url}/dashboard/", timeout=10)

    assert page.status_code == 200
    assert 'data-data-url="/dashboard/data.json"' in page.text
    assert 'id="dashboard-initial"' in page.text
    assets = re.findall(r'(?:href|src)="(/static/dashboard/[^"]+)"', page.text)
    assert sorted(assets) == ["/static/dashboard/dashboard.css", "/static/dashboard/dashboard.js"]
    for asset in assets:
        assert staff.get(f"{server.http_url}{asset}", timeout=10).status_code == 200
    links = re.findall(r'(?:href|src)="([^"]*)"', page.text)
    assert links
    external = [link for link in links if not link.startswith(("/", "data:"))]
    assert external == [], "the page loads nothing from elsewhere"
    assert not any(link.startswith("//") for link in links)


def test_it_shows_a_live_agent_online_with_its_exit_ip(
    tmp: Path, server: ServerProcess, key: str, staff: requests.Session
) -> None:
    assert agent_named(snapshot(staff, server), "pc-dash") is None

    agent = AgentProcess(tmp, server, key, "pc-dash", "127.0.0.2").start()
    try:
        data = snapshot(staff, server)
    finally:
        agent.terminate()

    row = agent_named(data, "pc-dash")
    assert row is not None
    assert row["state"] == "online"
    assert row["exit_ip"] == "127.0.0.2"
    assert row["admin_url"] == f"/admin/fleet/agent/{row['id']}/change/"
    assert data["live"] is True
    assert data["counts"]["online"] >= 1
    wait_for(
        lambda: agent_named(snapshot(staff, server), "pc-dash")["state"] == "offline",
        10,
        "the stopped agent to be shown offline",
    )


def test_it_never_lets_the_snapshot_be_cached(
    server: ServerProcess, staff: requests.Session
) -> None:
    answer = staff.get(f"{server.http_url}/dashboard/data.json", timeout=10)

    assert "no-store" in answer.headers["Cache-Control"]
    assert answer.headers["Content-Type"] == "application/json"


def test_it_counts_a_proxied_request_once_the_counters_are_flushed(
    tmp: Path, server: ServerProcess, key: str, target: TargetProcess, staff: requests.Session
) -> None:
    agent = AgentProcess(tmp, server, key, "pc-traffic", "127.0.0.4").start()
    try:
        assert fetch_once(server, f"{target.url}/bytes/50000") == 200

        # The page's parts are separate queries, so a flush can land between them:
        # wait until every part has the request, as the next poll would show.
        data = wait_for(
            lambda: (
                (d := snapshot(staff, server))["top_destinations"]
                and d["last_hour"]["requests"]
                and (agent_named(d, "pc-traffic") or {}).get("today_down")
                and d
            ),
            20,
            "the request to reach every part of the dashboard",
        )
    finally:
        agent.terminate()

    assert data["top_destinations"][0]["host"] == "127.0.0.3"
    assert data["top_destinations"][0]["port"] == target.port
    assert data["top_destinations"][0]["bytes_down"] > 50000
    assert data["top_users"][0]["name"] == USER
    assert data["last_hour"]["requests"] >= 1
    assert data["traffic"]["bytes_down"][-1] + data["traffic"]["bytes_down"][-2] > 50000
    assert agent_named(data, "pc-traffic")["today_down"] > 50000


def test_it_refuses_a_user_who_is_no_longer_staff(server: ServerProcess) -> None:
    session = logged_in(server, FORMER, ADMIN_PASSWORD)
    assert snapshot(session, server)["counts"] is not None

    server.cli(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.filter(username={FORMER!r}).update(is_staff=False, is_superuser=False)",
    )
    answer = session.get(f"{server.http_url}/dashboard/data.json", allow_redirects=False)

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login/")


def test_a_logged_in_dashboard_gets_answers_again_after_a_server_restart(
    server: ServerProcess, staff: requests.Session
) -> None:
    before = snapshot(staff, server)
    server.terminate()
    with pytest.raises(requests.ConnectionError):
        staff.get(f"{server.http_url}/dashboard/data.json", timeout=5)

    server.start()

    after = snapshot(staff, server)  # the same session cookie: no new login
    assert [a["name"] for a in after["agents"]] == [a["name"] for a in before["agents"]]
    assert after["top_destinations"] == before["top_destinations"]

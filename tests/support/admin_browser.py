"""An admin's browser for tests: logs in through the form and reads the agent list."""

from __future__ import annotations

import html
import re

import requests

from tests.support.processes import ServerProcess


class Admin:
    """A logged-in admin's browser: GETs pages and POSTs forms with the CSRF token."""

    def __init__(
        self, server: ServerProcess, http: requests.Session, username: str, password: str
    ) -> None:
        self.url = server.http_url
        self.http = http
        login = http.get(f"{self.url}/admin/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token, login.text
        done = http.post(
            f"{self.url}/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "password": password,
            },
            timeout=10,
        )
        assert done.url.endswith("/admin/"), "login failed"

    def get(self, path: str) -> requests.Response:
        response = self.http.get(f"{self.url}{path}", timeout=10)
        assert response.status_code == 200, response.text
        return response

    def post(self, path: str, data: dict[str, object]) -> requests.Response:
        form = {"csrfmiddlewaretoken": self.http.cookies["csrftoken"], **data}
        response = self.http.post(f"{self.url}{path}", data=form, timeout=10)
        assert response.status_code == 200, response.text
        return response

    def agent_action(self, action: str, agent_id: int) -> requests.Response:
        return self.post("/admin/fleet/agent/", {"action": action, "_selected_action": agent_id})

    def agent_id(self, name: str) -> int:
        page = self.get(f"/admin/fleet/agent/?q={name}").text
        found = re.search(
            rf'href="/admin/fleet/agent/(\d+)/change/[^"]*"><strong>{re.escape(name)}<', page
        )
        assert found, f"no agent {name} in the list"
        return int(found.group(1))

    def agent_row(self, name: str) -> str:
        return row(self.get(f"/admin/fleet/agent/?q={name}").text, name)

    def user_id(self, name: str) -> int:
        page = self.get(f"/admin/fleet/proxyuser/?q={name}").text
        found = re.search(rf'href="/admin/fleet/proxyuser/(\d+)/change/[^"]*">{name}<', page)
        assert found, f"no user {name} in the list"
        return int(found.group(1))


def row(page: str, name: str) -> str:
    """The text of the changelist row whose first column is ``name``."""
    for match in re.finditer(r"<tr[^>]*>(.*?)</tr>", page, re.S):
        cells = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))))
        if re.search(rf"(^| ){re.escape(name)} ", cells):
            return cells
    raise AssertionError(f"no row for {name}")

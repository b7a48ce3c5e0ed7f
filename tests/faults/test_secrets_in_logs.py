"""Credentials never appear in logs.

A run that uses every kind of secret (a proxy password, right and wrong, in
Proxy-Authorization; an API token, right and wrong; an enrollment key; the
agent credential it is exchanged for), then a search of the server's and the
agent's whole output for each secret and its Basic-auth encoding.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import requests

from tests.support.processes import AgentProcess, ServerProcess
from tests.support.target import TargetProcess

PASSWORD = "pw-Never-Logged-7"
WRONG_PASSWORD = "wrong-Never-Logged-8"


def test_no_secret_reaches_the_server_or_agent_logs(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path, env={"EXITPOOL_CREATE_ADMIN": "0", "EXITPOOL_LOG_LEVEL": "DEBUG"}
    )
    created = server.cli("proxyuser", "carl", "--password", PASSWORD)
    token = re.search(r"api token: (\S+)", created)
    assert token is not None, created
    server.start()
    agent = None
    try:
        key = server.enrollment_key("secrets")
        agent = AgentProcess(tmp_path, server, key, "pc-secrets", "127.0.0.2").start()
        state = json.loads((agent.config_dir / "agent-state.json").read_text())
        credential = state["servers"][server.ws_url]["credential"]
        with TargetProcess(host="127.0.0.3") as target:
            for password, status in ((PASSWORD, 200), (WRONG_PASSWORD, 407)):
                url = server.proxy_url("carl", password)
                answer = requests.get(f"{target.url}/ip", proxies={"http": url}, timeout=10)
                assert answer.status_code == status
            for bearer, status in ((token.group(1), 200), ("ept_not-a-real-token", 401)):
                answer = requests.get(
                    f"{server.http_url}/api/v1/usage",
                    headers={"Authorization": f"Bearer {bearer}"},
                    timeout=10,
                )
                assert answer.status_code == status
    finally:
        if agent is not None:
            agent.terminate()
        server.terminate()

    logs = {"server": server.log(), "agent": agent.log()}
    assert "online as pc-secrets" in logs["agent"]  # the logs are the right ones, and not empty
    secrets = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "basic auth": base64.b64encode(f"carl:{PASSWORD}".encode()).decode(),
        "wrong basic auth": base64.b64encode(f"carl:{WRONG_PASSWORD}".encode()).decode(),
        "api token": token.group(1),
        "wrong api token": "ept_not-a-real-token",
        "enrollment key": key,
        "agent credential": credential,
    }
    leaks = [
        f"{what} in the {where} log"
        for what, secret in secrets.items()
        for where, text in logs.items()
        if secret in text
    ]
    assert not leaks

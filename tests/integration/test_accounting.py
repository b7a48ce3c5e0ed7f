"""What the server counts and enforces: the request log, usage, limits (429/503), /metrics.

One server with short flush and small limits, two real agents, a real target;
the test reads the server's SQLite database directly, as an admin's tool would.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import raw_proxy
from tests.support.processes import AgentProcess, ServerProcess, wait_for
from tests.support.target import TargetProcess, free_port

PASSWORD = "pw-for-accounting"
MAX_STREAMS_PER_AGENT = 2


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp,
        env={
            "EXITPOOL_FLUSH_INTERVAL": "1",
            "EXITPOOL_MAX_STREAMS_PER_AGENT": str(MAX_STREAMS_PER_AGENT),
            "EXITPOOL_OPEN_TIMEOUT": "4",
        },
    )
    for name in ("logged", "bob", "carol", "dave"):
        process.cli("proxyuser", name, "--password", PASSWORD)
    process.cli(
        "shell",
        "-c",
        "from server.fleet.models import ProxyUser as U; "
        "U.objects.filter(name='bob').update(max_streams=2); "
        "U.objects.filter(name='carol').update(monthly_quota_bytes=5000)",
    )
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module", autouse=True)
def agents(tmp: Path, server: ServerProcess) -> Iterator[list[AgentProcess]]:
    key = server.enrollment_key("accounting")
    started = [
        AgentProcess(tmp, server, key, "acct-a", "127.0.0.2").start(),
        AgentProcess(tmp, server, key, "acct-b", "127.0.0.4").start(),
    ]
    yield started
    for agent in started:
        agent.terminate()


def query(server: ServerProcess, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(server.data_dir / "exitpool.sqlite3")) as db:
        return db.execute(sql, args).fetchall()


def proxies(server: ServerProcess, user: str) -> dict[str, str]:
    url = server.proxy_url(user, PASSWORD)
    return {"http": url, "https": url}


def once(server: ServerProcess, user: str, method: str, url: str, body: bytes | None = None):  # type: ignore[no-untyped-def]
    """One request on its own proxy connection, closed right after the response.

    (A ``requests`` call may leave its connection idle in a pool, and a proxied
    connection's row is written when the connection ends.)
    """
    connection = http.client.HTTPConnection("127.0.0.1", server.proxy_port, timeout=10)
    try:
        auth = raw_proxy.basic_auth(user, PASSWORD)
        connection.request(method, url, body=body, headers={"Proxy-Authorization": auth})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def open_tunnel(
    server: ServerProcess, user: str, target: TargetProcess
) -> tuple[socket.socket, bytes]:
    """A CONNECT tunnel to the target left open; returns the socket and the proxy's answer head."""
    return raw_proxy.open_tunnel(server, user, PASSWORD, f"{target.host}:{target.port}")


def test_the_request_log_holds_one_row_per_request_with_its_outcome(server, target):
    refused_port = free_port()
    status, body = once(server, "logged", "GET", f"{target.url}/bytes/3000")
    assert status == 200 and len(body) == 3000
    assert once(server, "logged", "POST", f"{target.url}/upload", b"u" * 700)[0] == 200
    assert once(server, "logged", "GET", f"http://127.0.0.3:{refused_port}/")[0] == 502
    bad = requests.get(
        f"{target.url}/ip",
        proxies={"http": server.proxy_url("logged", "wrong")},
        timeout=10,
    )
    assert bad.status_code == 407

    def rows() -> list[tuple[Any, ...]]:
        return query(
            server,
            "SELECT kind, user_name, agent_name, host, port, bytes_up, bytes_down, status, result,"
            " user_id IS NOT NULL FROM fleet_requestlog WHERE user_name = 'logged' ORDER BY id",
        )

    wait_for(lambda: len(rows()) >= 4, 10, "four request-log rows")
    found = rows()
    assert len(found) == 4
    download, sent, failed, denied = found
    assert download[:5] == ("http", "logged", download[2], "127.0.0.3", target.port)
    assert download[2] in ("acct-a", "acct-b")
    assert download[6] > 3000 and download[7:9] == (200, "ok") and download[9] == 1
    assert sent[5] > 700 and sent[7:9] == (200, "ok")
    assert failed[3:5] == ("127.0.0.3", refused_port) and failed[7:9] == (502, "target-refused")
    assert denied[7:10] == (407, "auth-failed", 0)  # the name is kept, no user is linked

    def usage() -> list[tuple[Any, ...]]:
        return query(
            server,
            "SELECT u.bytes_up, u.bytes_down, u.requests FROM fleet_usermonthusage u"
            " JOIN fleet_proxyuser p ON p.id = u.user_id WHERE p.name = 'logged'",
        )

    wait_for(lambda: usage() and usage()[0][2] >= 3, 10, "the month's usage")
    up, down, count = usage()[0]
    logged_up = sum(row[5] for row in found)
    logged_down = sum(row[6] for row in found)
    assert (up, down, count) == (logged_up, logged_down, 3)


def test_a_long_tunnel_is_counted_while_it_runs(server, target):
    with requests.Session() as session:
        session.proxies = proxies(server, "dave")
        # One keep-alive connection: one flow that stays open between requests.
        for _ in range(3):
            assert len(session.get(f"{target.url}/bytes/100000", timeout=10).content) == 100000

        def counted() -> int:
            found = query(
                server,
                "SELECT u.bytes_down FROM fleet_usermonthusage u"
                " JOIN fleet_proxyuser p ON p.id = u.user_id WHERE p.name = 'dave'",
            )
            return found[0][0] if found else 0

        # Still open, so no request-log row yet, but the bytes are already in the usage.
        wait_for(lambda: counted() >= 300000, 10, "the open connection's bytes to be counted")
        assert not query(server, "SELECT 1 FROM fleet_requestlog WHERE user_name = 'dave'")


def test_a_user_over_their_stream_limit_gets_429_until_one_closes(server, target):
    first, head1 = open_tunnel(server, "bob", target)
    second, head2 = open_tunnel(server, "bob", target)
    try:
        assert head1.startswith(b"HTTP/1.1 200") and head2.startswith(b"HTTP/1.1 200")
        third, head3 = open_tunnel(server, "bob", target)
        third.close()
        assert head3.startswith(b"HTTP/1.1 429 Too Many Requests")
        assert b"X-Exitpool-Error: too-many-streams" in head3
        other = requests.get(f"{target.url}/ip", proxies=proxies(server, "dave"), timeout=10)
        assert other.status_code == 200  # other users are not affected
    finally:
        first.close()
    wait_for(
        lambda: open_tunnel(server, "bob", target)[1].startswith(b"HTTP/1.1 200"),
        5,
        "a slot to come free",
    )
    second.close()


def test_a_user_over_their_monthly_quota_gets_429_with_a_clear_body(server, target):
    first = requests.get(f"{target.url}/bytes/6000", proxies=proxies(server, "carol"), timeout=10)
    assert first.status_code == 200  # under the quota when it started: it runs to the end

    def refused() -> bool:
        answer = requests.get(f"{target.url}/ip", proxies=proxies(server, "carol"), timeout=10)
        return answer.status_code == 429

    wait_for(refused, 5, "the quota to be enforced")
    answer = requests.get(f"{target.url}/ip", proxies=proxies(server, "carol"), timeout=10)
    assert answer.headers["X-Exitpool-Error"] == "quota-exceeded"
    assert "of 5000 bytes this month" in answer.text


def test_an_agent_at_its_stream_limit_is_passed_over_and_answers_503_when_pinned(server, target):
    pinned = "dave-agent-acct-a"
    tunnels = [open_tunnel(server, pinned, target) for _ in range(MAX_STREAMS_PER_AGENT)]
    try:
        assert all(head.startswith(b"HTTP/1.1 200") for _, head in tunnels)
        busy = requests.get(f"{target.url}/ip", proxies=proxies(server, pinned), timeout=10)
        assert busy.status_code == 503
        assert busy.headers["X-Exitpool-Error"] == "agent-busy"
        assert "stream limit" in busy.text
        for _ in range(3):  # unpinned requests go to the other agent
            other = requests.get(f"{target.url}/ip", proxies=proxies(server, "dave"), timeout=10)
            assert other.text == "127.0.0.4"
    finally:
        for sock, _ in tunnels:
            sock.close()


def test_metrics_parse_and_count_what_happened(server, target):
    requests.get(f"{target.url}/bytes/1234", proxies=proxies(server, "dave"), timeout=10)
    wait_for(
        lambda: "exitpool_requests_total" in requests.get(f"{server.http_url}/metrics").text,
        5,
        "request counters",
    )
    text = requests.get(f"{server.http_url}/metrics", timeout=10).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("exitpool_agents", (("state", "online"),))] == 2
    assert samples[("exitpool_agents", (("state", "offline"),))] == 0
    assert samples[("exitpool_requests_total", (("kind", "http"), ("result", "ok")))] >= 1
    assert samples[("exitpool_bytes_total", (("direction", "down"),))] > 1234
    assert samples[("exitpool_gateway_first_byte_seconds_count", (("kind", "http"),))] >= 1
    assert ("exitpool_streams_open", ()) in samples


def test_metrics_can_require_a_token(tmp_path):
    process = ServerProcess(tmp_path, env={"EXITPOOL_METRICS_TOKEN": "m-secret"}).start()
    try:
        assert requests.get(f"{process.http_url}/metrics", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (
            requests.get(f"{process.http_url}/metrics", headers=wrong, timeout=10).status_code
            == 401
        )
        right = {"Authorization": "Bearer m-secret"}
        answer = requests.get(f"{process.http_url}/metrics", headers=right, timeout=10)
        assert answer.status_code == 200 and "exitpool_agents" in answer.text
    finally:
        process.terminate()

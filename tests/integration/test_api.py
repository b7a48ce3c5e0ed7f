"""``/api/v1/``: fetches through real agents to a real target, agents, usage, OpenAPI, errors.

The server here has small API limits of its own (so crossing them is quick)
and trusts the tests' CA through ``SSL_CERT_FILE``, the way an admin would add
a private CA: the server verifies TLS to targets itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import PASSWORD
from tests.support.processes import ServerProcess, wait_for
from tests.support.target import TargetProcess, expected_bytes

MAX_REQUEST_BODY = 64 * 1024
MAX_RESPONSE_BODY = 256 * 1024
FLUSH_INTERVAL = 1.0

pytestmark = pytest.mark.usefixtures("agent_a", "agent_b")


@pytest.fixture(scope="module")
def server(tmp: Path, ca_bundle: str) -> Iterator[ServerProcess]:
    """This module's server (overrides conftest's): small API limits, the tests' CA trusted."""
    process = ServerProcess(
        tmp,
        env={
            "EXITPOOL_API_MAX_REQUEST_BODY": str(MAX_REQUEST_BODY),
            "EXITPOOL_API_MAX_RESPONSE_BODY": str(MAX_RESPONSE_BODY),
            "EXITPOOL_OPEN_TIMEOUT": "4",
            "EXITPOOL_FLUSH_INTERVAL": str(FLUSH_INTERVAL),
            "SSL_CERT_FILE": ca_bundle,
        },
    )
    process.start()
    yield process
    process.terminate()


def new_user(server: ServerProcess, name: str) -> str:
    """Create a proxy user with ``proxyuser``; returns the API token it printed."""
    out = server.cli("proxyuser", name, "--password", PASSWORD)
    lines = [line for line in out.splitlines() if line.startswith("api token: ")]
    assert len(lines) == 1, out
    return lines[0].removeprefix("api token: ")


@pytest.fixture(scope="module")
def token(server: ServerProcess) -> str:
    return new_user(server, "alice")


class Api:
    """A caller of the API with one token."""

    def __init__(self, server: ServerProcess, token: str | None) -> None:
        self.base = f"{server.http_url}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def fetch(self, **fields: object) -> requests.Response:
        return requests.post(f"{self.base}/fetch", json=fields, headers=self.headers, timeout=30)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.base}/{path}", headers=self.headers, timeout=10)


@pytest.fixture(scope="module")
def api(server: ServerProcess, token: str) -> Api:
    return Api(server, token)


def body_of(answer: requests.Response) -> bytes:
    assert answer.status_code == 200, answer.text
    return base64.b64decode(answer.json()["body"])


def assert_error(answer: requests.Response, status: int, code: str) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()
    assert error["error"] == code
    assert error["message"]
    return error


EXIT_OF = {"pc-a": "127.0.0.2", "pc-b": "127.0.0.4"}


# ---------------------------------------------------------------- fetching


def test_a_fetch_leaves_through_an_agent_and_says_which(api, target):
    answer = api.fetch(url=f"{target.url}/ip")
    result = answer.json()
    assert result["status"] == 200
    assert result["agent"] in EXIT_OF
    # The target saw the agent's source address: the request really left from that agent.
    assert body_of(answer) == EXIT_OF[result["agent"]].encode()
    assert result["exit_ip"] == EXIT_OF[result["agent"]]
    assert ["X-Peer", EXIT_OF[result["agent"]]] in result["headers"]
    assert isinstance(result["elapsed_ms"], int)
    assert 0 <= result["elapsed_ms"] < 10_000


def test_agent_pins_one_agent(api, target):
    for name, ip in EXIT_OF.items():
        for _ in range(3):
            answer = api.fetch(url=f"{target.url}/ip", agent=name)
            assert body_of(answer) == ip.encode()
            assert answer.json()["agent"] == name


def test_session_sticks_to_one_agent_while_plain_fetches_rotate(api, target):
    rotated = {api.fetch(url=f"{target.url}/ip").json()["agent"] for _ in range(6)}
    assert rotated == set(EXIT_OF)
    for session in ("s1", "s2"):
        carried = {
            api.fetch(url=f"{target.url}/ip", session=session).json()["agent"] for _ in range(5)
        }
        assert len(carried) == 1


def test_it_posts_a_text_body_and_a_binary_body(api, target):
    text = "héllo wörld " * 1000
    answer = api.fetch(url=f"{target.url}/upload", method="POST", body=text)
    sent = text.encode()
    assert answer.json()["status"] == 200
    assert body_of(answer) == (
        b'{"length": %d, "sha256": "%s"}' % (len(sent), hashlib.sha256(sent).hexdigest().encode())
    )
    binary = os.urandom(MAX_REQUEST_BODY)  # exactly the limit is allowed
    answer = api.fetch(
        url=f"{target.url}/upload",
        method="PUT",
        body_base64=base64.b64encode(binary).decode(),
    )
    uploaded = json.loads(body_of(answer))
    assert uploaded == {"length": len(binary), "sha256": hashlib.sha256(binary).hexdigest()}


def test_request_headers_reach_the_target_repeated_and_in_order(api, target):
    answer = api.fetch(
        url=f"{target.url}/echo-headers?q=1",
        method="PATCH",
        headers=[
            ["X-One", "1"],
            ["Accept", "text/plain"],
            ["X-One", "2"],
            ["Connection", "keep-alive, X-Secret"],
            ["Proxy-Authorization", "Basic c2VjcmV0"],
        ],
    )
    seen = json.loads(body_of(answer))
    assert seen["method"] == "PATCH"
    assert seen["path_qs"] == "/echo-headers?q=1"
    assert seen["version"] == "HTTP/1.1"
    assert seen["headers"]["x-one"] == ["1", "2"]
    assert seen["headers"]["accept"] == "text/plain"
    assert seen["headers"]["host"] == f"127.0.0.3:{target.port}"
    assert seen["headers"]["connection"] == "close"  # ours, not the caller's
    assert "proxy-authorization" not in seen["headers"]
    # The response's headers come back as pairs, as the target sent them.
    names = [name.lower() for name, _ in answer.json()["headers"]]
    assert "content-type" in names


def test_headers_may_be_an_object_and_host_may_be_set(api, target):
    answer = api.fetch(
        url=f"{target.url}/echo-headers", headers={"Host": "example.test", "X-Custom": "kept"}
    )
    seen = json.loads(body_of(answer))
    assert seen["headers"]["host"] == "example.test"
    assert seen["headers"]["x-custom"] == "kept"


def test_a_chunked_response_comes_back_whole(api, target):
    size = MAX_RESPONSE_BODY
    answer = api.fetch(url=f"{target.url}/bytes/{size}?chunked=1")
    assert body_of(answer) == expected_bytes(size)


def test_it_fetches_https_verifying_the_certificate(api, tls_target):
    answer = api.fetch(url=f"{tls_target.url}/ip", agent="pc-a")
    assert body_of(answer) == b"127.0.0.2"


def test_an_untrusted_certificate_is_a_tls_failure(api, tmp):
    stranger = trustme.CA().issue_cert("127.0.0.3")
    cert, key = tmp / "untrusted-cert.pem", tmp / "untrusted-key.pem"
    stranger.cert_chain_pems[0].write_to_path(str(cert))
    stranger.private_key_pem.write_to_path(str(key))
    with TargetProcess(host="127.0.0.3", tls=(str(cert), str(key))) as untrusted:
        error = assert_error(api.fetch(url=f"{untrusted.url}/ip"), 502, "tls-failed")
    assert "certificate" in error["message"].lower()


def test_a_head_request_ends_after_the_head(api, target):
    answer = api.fetch(url=f"{target.url}/bytes/1000", method="HEAD", timeout=5)
    result = answer.json()
    assert result["status"] == 200
    assert result["body"] == ""
    assert ["Content-Length", "1000"] in result["headers"]


def test_a_target_error_status_is_a_successful_fetch(api, target):
    answer = api.fetch(url=f"{target.url}/no-such-page")
    assert answer.status_code == 200
    assert answer.json()["status"] == 404


# ---------------------------------------------------------------- failures


def test_it_refuses_callers_without_a_valid_token(server):
    for token, code in ((None, "auth-required"), ("ept_wrong", "auth-failed")):
        for answer in (
            Api(server, token).fetch(url="http://127.0.0.3/"),
            Api(server, token).get("usage"),
        ):
            assert_error(answer, 401, code)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_body_over_the_limit_is_413(api, server, target):
    over = base64.b64encode(os.urandom(MAX_REQUEST_BODY + 1)).decode()
    assert_error(api.fetch(url=f"{target.url}/upload", body_base64=over), 413, "body-too-large")
    assert_error(
        api.fetch(url=f"{target.url}/upload", body="x" * (MAX_REQUEST_BODY + 1)),
        413,
        "body-too-large",
    )
    # An API request far over any allowed size is refused on its Content-Length.
    huge = b'{"url": "%s/upload", "body": "%s"}' % (
        target.url.encode(),
        b"x" * (3 * MAX_REQUEST_BODY + 70_000),
    )
    answer = requests.post(
        f"{api.base}/fetch",
        data=huge,
        headers={**api.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert_error(answer, 413, "body-too-large")


def test_a_response_over_the_limit_is_502(api, target):
    for query in ("", "?chunked=1"):  # announced by Content-Length, or found while reading
        answer = api.fetch(url=f"{target.url}/bytes/{MAX_RESPONSE_BODY + 1}{query}")
        assert_error(answer, 502, "response-too-large")


def test_a_target_that_never_answers_is_504_after_the_timeout(api, target):
    started = time.monotonic()
    error = assert_error(api.fetch(url=f"{target.url}/hang", timeout=1), 504, "target-timeout")
    assert 0.9 < time.monotonic() - started < 5
    assert "1s" in error["message"]


def test_a_pinned_agent_that_is_not_online_is_503(api, target):
    answer = api.fetch(url=f"{target.url}/ip", agent="nobody")
    error = assert_error(answer, 503, "no-agent")
    assert "nobody" in error["message"]


def test_a_refused_connection_has_the_proxy_s_code(api):
    from tests.support.target import free_port

    closed = free_port("127.0.0.3")
    assert_error(api.fetch(url=f"http://127.0.0.3:{closed}/", agent="pc-a"), 502, "target-refused")


@pytest.mark.parametrize(
    ("fields", "hint"),
    [
        ({}, "url"),
        ({"url": "ftp://127.0.0.3/"}, "http"),
        ({"url": "http://user:pw@127.0.0.3/"}, "Authorization"),
        ({"url": "http://127.0.0.3:99999/"}, "port"),
        ({"url": "http://127.0.0.3/", "method": "GET /x"}, "method"),
        ({"url": "http://127.0.0.3/", "method": "CONNECT"}, "CONNECT"),
        ({"url": "http://127.0.0.3/", "headers": {"X": "a\r\nB: c"}}, "header"),
        ({"url": "http://127.0.0.3/", "body": "a", "body_base64": "YQ=="}, "not both"),
        ({"url": "http://127.0.0.3/", "body_base64": "***"}, "base64"),
        ({"url": "http://127.0.0.3/", "timeout": 0}, "timeout"),
        ({"url": "http://127.0.0.3/", "colour": "blue"}, "colour"),
    ],
)
def test_a_bad_fetch_is_400_saying_what_is_wrong(api, fields, hint):
    error = assert_error(api.fetch(**fields), 400, "bad-request")
    assert hint.lower() in error["message"].lower()


def test_only_json_posts_are_fetches(api):
    answer = requests.post(f"{api.base}/fetch", data={"url": "x"}, headers=api.headers, timeout=10)
    assert_error(answer, 415, "unsupported-media-type")
    answer = requests.post(
        f"{api.base}/fetch",
        data="{not json",
        headers={**api.headers, "Content-Type": "application/json"},
        timeout=10,
    )
    assert_error(answer, 400, "bad-request")
    answer = api.get("fetch")
    assert_error(answer, 405, "method-not-allowed")
    assert answer.headers["Allow"] == "POST"
    assert_error(api.get("nothing-here"), 404, "not-found")


def test_a_user_over_their_monthly_quota_gets_429(server, target):
    caller = Api(server, new_user(server, "dave"))
    server.cli(
        "shell",
        "-c",
        "from server.fleet.models import ProxyUser; "
        "ProxyUser.objects.filter(name='dave').update(monthly_quota_bytes=5000)",
    )
    assert body_of(caller.fetch(url=f"{target.url}/bytes/20000")) == expected_bytes(20000)
    error = assert_error(caller.fetch(url=f"{target.url}/ip"), 429, "quota-exceeded")
    assert "5000" in error["message"]
    usage = caller.get("usage").json()
    assert usage["monthly_quota_bytes"] == 5000
    assert usage["remaining_bytes"] == 0


# ---------------------------------------------------------------- agents, usage, log


def test_agents_lists_what_a_user_may_know(api):
    answer = api.get("agents")
    assert answer.status_code == 200
    agents = {agent["name"]: agent for agent in answer.json()["agents"]}
    assert agents == {
        name: {"name": name, "exit_ip": ip, "online": True, "paused": False}
        for name, ip in EXIT_OF.items()
    }


def test_usage_counts_the_caller_s_own_fetches(server, target):
    caller = Api(server, new_user(server, "erin"))
    before = caller.get("usage").json()
    assert before["bytes_total"] == 0
    assert before["requests"] == 0
    assert before["monthly_quota_bytes"] is None
    assert before["remaining_bytes"] is None
    assert before["max_streams"] == 256
    assert before["open_streams"] == 0
    caller.fetch(url=f"{target.url}/bytes/100000")
    caller.fetch(url=f"{target.url}/upload", method="POST", body="x" * 30000)
    after = caller.get("usage").json()
    assert after["user"] == "erin"
    assert after["bytes_down"] > 100000
    assert after["bytes_up"] > 30000
    assert after["bytes_total"] == after["bytes_up"] + after["bytes_down"]
    assert after["requests"] >= 2
    # The same numbers once they are flushed to the database.
    time.sleep(FLUSH_INTERVAL * 2.5)
    flushed = caller.get("usage").json()
    assert flushed["bytes_total"] == after["bytes_total"]


def test_every_fetch_is_in_the_request_log(server, target):
    caller = Api(server, new_user(server, "frank"))
    caller.fetch(url=f"{target.url}/ip", agent="pc-b")
    caller.fetch(url=f"{target.url}/hang", timeout=0.5)
    script = (
        "from server.fleet.models import RequestLog; "
        "print(sorted((r.kind, r.agent_name, r.port, r.status, r.result) "
        "for r in RequestLog.objects.filter(user_name='frank')))"
    )
    rows = wait_for(
        lambda: (out := server.cli("shell", "-c", script)).count("'api'") == 2 and out,
        10,
        "frank's fetches in the request log",
    )
    assert f"('api', 'pc-b', {target.port}, 200, 'ok')" in rows
    assert f"{target.port}, 504, 'target-timeout')" in rows


def test_no_stream_outlives_its_fetch(api, server, target):
    api.fetch(url=f"{target.url}/bytes/1000")
    api.fetch(url=f"{target.url}/bytes/{MAX_RESPONSE_BODY * 2}?chunked=1")
    api.fetch(url=f"{target.url}/hang", timeout=0.5)

    def streams_open() -> float:
        text = requests.get(f"{server.http_url}/metrics", timeout=10).text
        families = {family.name: family for family in text_string_to_metric_families(text)}
        return families["exitpool_streams_open"].samples[0].value

    wait_for(lambda: streams_open() == 0, 5, "every fetch's stream to be closed")


# ---------------------------------------------------------------- OpenAPI


def test_the_openapi_description_is_served_and_valid(server):
    answer = requests.get(f"{server.http_url}/api/v1/openapi.json", timeout=10)
    assert answer.status_code == 200
    spec = answer.json()
    validate(spec)
    assert set(spec["paths"]) == {"/fetch", "/agents", "/usage", "/openapi.json"}

"""Self-test of the out-of-process target server used by integration tests."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # make `tests.support` importable however pytest was started
    sys.path.insert(0, _ROOT)

from tests.support.target import (  # noqa: E402
    TargetProcess,
    expected_bytes,
    free_port,
    pattern_chunk,
)

HOST = "127.0.0.3"


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess(host=HOST) as t:
        yield t


def _session(local_ip: str = "127.0.0.1", **kw: object) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(local_ip, 0), **kw)  # type: ignore[arg-type]
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10))


def test_pattern_helpers() -> None:
    data = bytes((i * 7 + 13) % 251 for i in range(200_000))
    assert expected_bytes(200_000) == data
    assert expected_bytes(0) == b""
    for offset, length in [(0, 1), (250, 3), (251, 251), (12345, 70_000), (999, 150_000)]:
        assert pattern_chunk(offset, length) == data[offset : offset + length]
    port = free_port(HOST)
    assert 0 < port < 65536


@pytest.mark.parametrize("local_ip", ["127.0.0.1", "127.0.0.2"])
async def test_ip_sees_source_address(target: TargetProcess, local_ip: str) -> None:
    assert target.url == f"http://{HOST}:{target.port}"
    async with _session(local_ip) as s, s.get(f"{target.url}/ip") as r:
        assert r.status == 200
        assert await r.text() == local_ip
        assert r.headers["X-Peer"] == local_ip


async def test_root_bytes_and_chunked(target: TargetProcess) -> None:
    async with _session() as s:
        async with s.get(f"{target.url}/") as r:
            assert await r.text() == "exitpool test target\n"
        async with s.get(f"{target.url}/bytes/1000000") as r:
            assert r.content_length == 1_000_000
            assert await r.read() == expected_bytes(1_000_000)
        async with s.get(f"{target.url}/bytes/300000?chunked=1&delay_ms=20") as r:
            assert "Content-Length" not in r.headers
            assert r.headers.get("Transfer-Encoding") == "chunked"
            assert await r.read() == expected_bytes(300_000)


async def test_slow_bytes_rate(target: TargetProcess) -> None:
    async with _session() as s:
        t0 = time.monotonic()
        async with s.get(f"{target.url}/slow-bytes/30000?rate=100000") as r:
            assert r.content_length == 30_000
            assert await r.read() == expected_bytes(30_000)
        assert time.monotonic() - t0 >= 0.2


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_upload_sha256(target: TargetProcess, method: str) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    async with _session() as s, s.request(method, f"{target.url}/upload", data=payload) as r:
        assert await r.json() == {
            "length": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }


async def test_echo_headers(target: TargetProcess) -> None:
    headers = CIMultiDict([("X-Dup", "a"), ("X-Dup", "b"), ("X-One", "1")])
    async with (
        _session() as s,
        s.get(f"{target.url}/echo-headers?a=1&b=%20", headers=headers) as r,
    ):
        body = await r.json()
    assert body["method"] == "GET"
    assert body["path_qs"] == "/echo-headers?a=1&b=%20"
    assert body["headers"]["x-dup"] == ["a", "b"]
    assert body["headers"]["x-one"] == "1"
    assert ["X-One", "1"] in body["raw_headers"]


async def test_hang_does_not_answer(target: TargetProcess) -> None:
    async with _session() as s:
        with pytest.raises(TimeoutError):
            await s.get(f"{target.url}/hang", timeout=aiohttp.ClientTimeout(total=0.3))


def test_stop_is_prompt_with_pending_request() -> None:
    with TargetProcess(host=HOST) as t, socket.create_connection((t.host, t.port)) as c:
        c.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        t0 = time.monotonic()
        t.stop()
        assert time.monotonic() - t0 < 3
        assert t.returncode == 0


async def test_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with TargetProcess(host=HOST, tls=(str(cert), str(key))) as t:
        assert t.url == f"https://{HOST}:{t.port}"
        async with _session(ssl=client_ctx) as s, s.get(f"{t.url}/ip") as r:
            assert await r.text() == "127.0.0.1"
        # An untrusting client must fail verification.
        async with _session() as s:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await s.get(f"{t.url}/ip")


def test_raw_modes() -> None:
    with TargetProcess(host=HOST, mode="half-close") as t:
        with socket.create_connection((t.host, t.port), timeout=5) as c:
            c.sendall(b"x" * 100_000)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(4096):
                got += chunk
        assert got == b"got 100000 bytes\n"

    with (
        TargetProcess(host=HOST, mode="reset") as t,
        socket.create_connection((t.host, t.port), timeout=5) as c,
        pytest.raises(ConnectionResetError),
    ):
        c.recv(1)  # RST usually arrives before recv; give it one more read
        c.recv(1)

    with (
        TargetProcess(host=HOST, mode="accept-silent") as t,
        socket.create_connection((t.host, t.port), timeout=0.3) as c,
    ):
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(TimeoutError):
            c.recv(1)

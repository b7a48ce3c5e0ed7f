"""Target server for integration tests, run as a separate process on loopback.

Usage::

    python tests/support/target.py --host 127.0.0.3 --port P \
        [--tls-cert CERT.pem --tls-key KEY.pem] [--ready-file PATH] \
        [--mode http|accept-silent|reset|half-close] [--parent-pid PID]

HTTP mode endpoints (aiohttp.web):

- ``GET /``                 -> ``exitpool test target\\n``
- ``GET /ip``               -> peer IP of the TCP connection (body and ``X-Peer`` header)
- ``GET /bytes/{n}``        -> n pattern bytes (see :func:`pattern_chunk`), Content-Length set;
  ``?delay_ms=D`` sleeps before the body, ``?chunked=1`` uses chunked encoding instead
- ``GET /slow-bytes/{n}``   -> n pattern bytes at ``?rate=BYTES_PER_S`` (default 65536)
- ``POST|PUT /upload``      -> JSON ``{"length": N, "sha256": hex}`` of the streamed body
- ``GET /echo-headers``     -> JSON ``{"method", "path_qs", "version", "headers", "raw_headers"}``
- ``GET /hang``             -> never answers (sleeps up to an hour)

Raw TCP modes: ``accept-silent`` (never sends, closes after 300 s), ``reset`` (RST right
after accept), ``half-close`` (reads to EOF, answers ``got N bytes\\n``, closes).

The module also provides :func:`free_port` and :class:`TargetProcess` for tests. It imports
only the standard library at module level (aiohttp is imported when the server runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

SCRIPT = Path(__file__).resolve()
MODES = ("http", "accept-silent", "reset", "half-close")
CHUNK = 64 * 1024
_PERIOD_LEN = 251
_PERIOD = bytes((i * 7 + 13) % _PERIOD_LEN for i in range(_PERIOD_LEN))
# A tile long enough that any window of CHUNK bytes starting in the first period fits.
_TILE = _PERIOD * (CHUNK // _PERIOD_LEN + 2)
_TILE_VIEW = memoryview(_TILE)


# --------------------------------------------------------------------------- content


def pattern_chunk(offset: int, length: int) -> bytes:
    """Bytes ``offset .. offset+length-1`` of the pattern where byte i = (i*7+13) % 251."""
    if offset < 0 or length < 0:
        raise ValueError("offset and length must be >= 0")
    start = offset % _PERIOD_LEN
    if start + length <= len(_TILE):
        return _TILE[start : start + length]
    reps = (start + length) // _PERIOD_LEN + 1
    return (_PERIOD * reps)[start : start + length]


def expected_bytes(n: int) -> bytes:
    """The full body that ``/bytes/{n}`` and ``/slow-bytes/{n}`` serve."""
    return pattern_chunk(0, n)


def _pattern_view(offset: int, length: int) -> memoryview:
    """Zero-copy view of the pattern; ``length`` must be <= CHUNK."""
    start = offset % _PERIOD_LEN
    return _TILE_VIEW[start : start + length]


# --------------------------------------------------------------------------- http mode


def _nonneg_int(value: str | None, default: int, name: str) -> int:
    from aiohttp import web

    if value is None or value == "":
        return default
    try:
        out = int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"bad {name}\n") from None
    if out < 0:
        raise web.HTTPBadRequest(text=f"bad {name}\n")
    return out


def _peer_ip(request: web.BaseRequest) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else ""


async def _handle_root(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    return web.Response(text="exitpool test target\n")


async def _handle_ip(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    ip = _peer_ip(request)
    return web.Response(text=ip, headers={"X-Peer": ip})


async def _stream_pattern(
    request: web.Request, n: int, *, chunked: bool, rate: int | None = None
) -> web.StreamResponse:
    from aiohttp import web

    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if chunked:
        resp.enable_chunked_encoding()
    else:
        resp.content_length = n
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    step = CHUNK if rate is None else max(1, min(CHUNK, rate // 20))
    started = time.monotonic()
    sent = 0
    try:
        while sent < n:
            if rate is not None:
                due = started + sent / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            size = min(step, n - sent)
            await resp.write(_pattern_view(sent, size))
            sent += size
        await resp.write_eof()
    except ConnectionError:
        pass  # client went away mid-body; nothing more to do
    return resp


async def _handle_bytes(request: web.Request) -> web.StreamResponse:
    n = _nonneg_int(request.match_info["n"], 0, "n")
    delay_ms = _nonneg_int(request.query.get("delay_ms"), 0, "delay_ms")
    chunked = request.query.get("chunked", "") not in ("", "0", "false")
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    return await _stream_pattern(request, n, chunked=chunked)


async def _handle_slow_bytes(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    n = _nonneg_int(request.match_info["n"], 0, "n")
    rate = _nonneg_int(request.query.get("rate"), 65536, "rate")
    if rate == 0:
        raise web.HTTPBadRequest(text="bad rate\n")
    return await _stream_pattern(request, n, chunked=False, rate=rate)


async def _handle_upload(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    digest = hashlib.sha256()
    length = 0
    async for data in request.content.iter_any():
        digest.update(data)
        length += len(data)
    return web.json_response({"length": length, "sha256": digest.hexdigest()})


async def _handle_echo_headers(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    headers: dict[str, Any] = {}
    raw: list[list[str]] = []
    for bname, bvalue in request.raw_headers:
        name = bname.decode("latin-1")
        value = bvalue.decode("latin-1")
        raw.append([name, value])
        key = name.lower()
        if key not in headers:
            headers[key] = value
        elif isinstance(headers[key], list):
            headers[key].append(value)
        else:
            headers[key] = [headers[key], value]
    body = {
        "method": request.method,
        "path_qs": request.raw_path,
        "version": f"HTTP/{request.version.major}.{request.version.minor}",
        "headers": headers,
        "raw_headers": raw,
    }
    return web.json_response(body)


async def _handle_hang(request: web.Request) -> web.StreamResponse:
    from aiohttp import web

    await asyncio.sleep(3600)
    return web.Response(text="woke up\n")


def make_app() -> web.Application:
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/", _handle_root)
    app.router.add_get("/ip", _handle_ip)
    app.router.add_get("/bytes/{n}", _handle_bytes)
    app.router.add_get("/slow-bytes/{n}", _handle_slow_bytes)
    app.router.add_post("/upload", _handle_upload)
    app.router.add_put("/upload", _handle_upload)
    app.router.add_route("*", "/echo-headers", _handle_echo_headers)
    app.router.add_get("/hang", _handle_hang)
    return app


# --------------------------------------------------------------------------- raw modes


class _RawServer:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            if self.mode == "accept-silent":
                await asyncio.sleep(300)
            elif self.mode == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            elif self.mode == "half-close":
                total = 0
                while data := await reader.read(CHUNK):
                    total += len(data)
                writer.write(f"got {total} bytes\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()


# --------------------------------------------------------------------------- main


def _write_ready(path: str | None) -> None:
    if not path:
        return
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("ready\n")
    os.replace(tmp, path)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(1.0)
        if os.getppid() != parent:
            stop.set()


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(args.parent_pid, stop)) if args.parent_pid else None

    if args.mode == "http":
        from aiohttp import web

        ssl_ctx = None
        if args.tls_cert:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        runner = web.AppRunner(
            make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.25
        )
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port, ssl_context=ssl_ctx, backlog=512)
        await site.start()
        port = int(runner.addresses[0][1])
        try:
            _announce(args, port)
            await stop.wait()
        finally:
            await runner.cleanup()
    else:
        raw = _RawServer(args.mode)
        tcp = await asyncio.start_server(raw.handle, args.host, args.port, backlog=512)
        port = tcp.sockets[0].getsockname()[1]
        try:
            _announce(args, port)
            await stop.wait()
        finally:
            tcp.close()
            for task in list(raw.tasks):
                task.cancel()
            await asyncio.gather(*raw.tasks, return_exceptions=True)
    if watcher is not None:
        watcher.cancel()


def _announce(args: argparse.Namespace, port: int) -> None:
    _write_ready(args.ready_file)
    print(f"listening {args.host}:{port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.3")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="http")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--ready-file")
    parser.add_argument(
        "--parent-pid", type=int, help="exit when this process stops being our parent"
    )
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_cert and args.mode != "http":
        parser.error("TLS is only supported in http mode")
    asyncio.run(_serve(args))
    return 0


# --------------------------------------------------------------------------- test helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class TargetProcess:
    """Run this script as a subprocess for the duration of a ``with`` block.

    ``port=None`` picks a free port (and retries with another one if the server fails to
    start, e.g. because the port was taken in between). Readiness is signalled through a
    ready-file, so no probe connection ever reaches the raw-TCP modes.
    """

    READY_TIMEOUT = 15.0
    TERM_TIMEOUT = 5.0

    def __init__(
        self,
        host: str = "127.0.0.3",
        port: int | None = None,
        mode: str = "http",
        tls: tuple[str, str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.mode = mode
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> TargetProcess:
        if self.proc is not None:
            raise RuntimeError("already started")
        self._tmpdir = tempfile.TemporaryDirectory(prefix="exitpool-target-")
        attempts = 1 if self._fixed_port else 3
        error: Exception | None = None
        for attempt in range(attempts):
            self.port = self._fixed_port or free_port(self.host)
            ready = Path(self._tmpdir.name) / f"ready{attempt}"
            cmd = [
                sys.executable,
                str(SCRIPT),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--mode",
                self.mode,
                "--ready-file",
                str(ready),
                "--parent-pid",
                str(os.getpid()),
            ]
            if self.tls:
                cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
            try:
                self._wait_ready(ready)
                return self
            except Exception as exc:
                error = exc
                self._terminate()
        self._cleanup_tmp()
        raise RuntimeError(f"target server did not start: {error}")

    def _wait_ready(self, ready: Path) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.READY_TIMEOUT
        while not ready.exists():
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"exited with code {rc} before becoming ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {self.READY_TIMEOUT} s")
            time.sleep(0.01)

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.TERM_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.returncode = proc.returncode

    def _cleanup_tmp(self) -> None:
        if self._tmpdir is not None:
            with contextlib.suppress(OSError):
                self._tmpdir.cleanup()
            self._tmpdir = None

    def stop(self) -> None:
        try:
            self._terminate()
        finally:
            self._cleanup_tmp()

    def __enter__(self) -> TargetProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())

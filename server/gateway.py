"""The proxy port: HTTP forward proxy (absolute-form and CONNECT) onto agent streams.

Each user connection is one :class:`ProxyConnection` (an asyncio protocol).
Request heads are parsed with httptools; CONNECT becomes a raw tunnel after
the ``200``; absolute-form requests are rewritten to origin form and sent down
a stream to the target while the response comes back raw. Requests on one
keep-alive connection reuse the stream while they go to the same host:port.
HTTP/1.1 clients do not pipeline, so when a request for another host arrives
the previous response has been delivered and its stream can be dropped.

Every failure is answered (4xx/5xx with an ``X-Exitpool-Error`` code) and
the connection closed; nothing raises past a connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import cast

import httptools

from server import metrics
from server.accounting import Accounting, Flow, Limited
from server.config import ServerConfig
from server.http_forward import (
    BadTarget,
    Destination,
    forwarded_head,
    parse_absolute_url,
    parse_authority,
)
from server.hub import AgentSession, Hub
from server.lazy_timer import LazyTimer
from server.proxy_auth import ProxyAuthenticator, parse_basic
from server.routing import Route, parse_username
from server.streams import OpenFailed, open_stream
from tunnel import SocketLink
from tunnel.link import abort_with_rst
from wire import Reason

log = logging.getLogger(__name__)

REASON_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

CONNECT_OK = b"HTTP/1.1 200 Connection established\r\n\r\n"

LISTEN_BACKLOG = 1024
"""Connections the kernel queues for the proxy listener (fewer for a small connection cap)."""


class ProxyError(Exception):
    """Answer the user with ``status`` and close; ``code`` goes in ``X-Exitpool-Error``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(slots=True)
class Head:
    method: bytes
    url: str
    version: str
    headers: list[tuple[bytes, bytes]]
    upgrade: bool


class Gateway:
    """The proxy listener and what its connections share."""

    def __init__(self, hub: Hub, config: ServerConfig, accounting: Accounting) -> None:
        self.hub = hub
        self.config = config
        self.accounting = accounting
        self.auth = ProxyAuthenticator(config.auth_cache_seconds)
        self.connections: set[ProxyConnection] = set()
        self.max_connections = config.max_proxy_connections
        """Connections served at once; ``run`` may lower it to fit the open-file limit."""
        self.server: asyncio.Server | None = None

    async def start(self) -> asyncio.Server:
        host, port = self.config.proxy_address
        loop = asyncio.get_running_loop()
        # asyncio accepts up to ``backlog`` connections per loop iteration, and one refused
        # over the cap keeps its descriptor for about three more: those batches must fit
        # beside the connections held, so a small cap gets a small backlog.
        backlog = min(LISTEN_BACKLOG, max(16, self.max_connections // 8))
        self.server = await loop.create_server(
            lambda: ProxyConnection(self), host, port, backlog=backlog, reuse_address=True
        )
        return self.server

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            connection.abort()


class ResponseLink(SocketLink):
    """A stream whose bytes are an HTTP response relayed raw to the user."""

    def __init__(self, owner: ProxyConnection, session: AgentSession, sid: int) -> None:
        super().__init__(session.mux, sid, on_close=owner.link_closed)
        self.owner = owner

    def on_data(self, data: bytes | memoryview) -> None:
        self.owner.response_started(data)
        super().on_data(data)

    def on_end(self) -> None:
        # The target closed: the response ends here, and so does the user's connection.
        if self.transport is not None:
            self.transport.close()
        self.end()

    def on_reset(self, reason: Reason, message: str) -> None:
        # The owner decides: a 502 if nothing was relayed yet, else a cut connection.
        self._finish(message or reason.name.lower())


class ProxyConnection(asyncio.Protocol):
    """One user connection to the proxy port."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.config = gateway.config
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.link: SocketLink | None = None
        self.flow: Flow | None = None
        self.destination: Destination | None = None
        self.tunnel = False
        self.closed = False
        self._task: asyncio.Task[None] | None = None
        self._queued: list[bytes] = []
        self._heads: list[Head] = []
        self._head_bytes = 0  # raw bytes of a head still incomplete
        self._head_size = 0  # parsed size of the current head
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._chunked = False
        self._in_body = False
        self._eof_pending = False
        self._credentials: str | None = None  # the Proxy-Authorization already verified
        loop = asyncio.get_running_loop()
        self._deadline = LazyTimer(loop, self.config.header_timeout, self._head_timeout)
        self._response_timer = LazyTimer(loop, self.config.response_timeout, self._no_response)
        self._responded = False
        self._request_started = 0.0

    # ------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if len(self.gateway.connections) >= self.gateway.max_connections:
            self.fail(ProxyError(503, "too-many-connections", "the proxy is at its limit"))
            return
        self.gateway.connections.add(self)
        self._deadline.arm()

    def data_received(self, data: bytes) -> None:
        if self.tunnel:
            assert self.link is not None
            self.link.data_received(data)
            return
        if self.closed:
            return
        if not self._in_body:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._dispatch(leftover=data[upgrade.args[0] :])
            return
        except httptools.HttpParserError as exc:
            status = 431 if self._head_bytes > self.config.max_header_bytes else 400
            self.fail(ProxyError(status, "bad-request", f"malformed HTTP request: {exc}"))
            return
        except Exception:  # nothing raises past a connection
            log.exception("unexpected error parsing a proxy request")
            self.fail(ProxyError(500, "internal", "internal error"))
            return
        limit = self.config.max_header_bytes
        if self._head_size > limit or (self._in_head and self._head_bytes > limit):
            self.fail(ProxyError(431, "header-too-large", f"request head over {limit} bytes"))
            return
        self._dispatch()

    def eof_received(self) -> bool:
        if self._task is None and (self.link is None or self.link.done):
            return False  # nothing in flight: close
        if not self.tunnel and self._task is None and self._responded and not self._heads:
            # The user closed after a response began: like every HTTP proxy, take it as
            # the end of the connection (waiting for the target to close could take a
            # keep-alive timeout). A half-close right after a request is passed on below.
            return False
        # The user sends nothing more. The half-close goes on to the target once its
        # response has begun: some servers drop a request whose client half-closed first.
        self._eof_pending = True
        self._pass_eof()
        return True

    def _pass_eof(self) -> None:
        if self._eof_pending and self._task is None and self.link is not None and self._responded:
            self._eof_pending = False
            self.link.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gateway.connections.discard(self)
        self._deadline.close()
        self._response_timer.close()
        if self._task is not None:
            self._task.cancel()
        self._end_flow(None, "ok" if self._responded else "client-closed")
        if self.link is not None:
            if exc is None and not self.tunnel:
                # The user is done with this connection: the agent closes the target's.
                self.link.cancel(Reason.CANCELLED, "the user closed the connection")
            else:
                self.link.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.link is not None:
            self.link.pause_writing()

    def resume_writing(self) -> None:
        if self.link is not None:
            self.link.resume_writing()

    # ---------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_size = 0
        self._url = b""
        self._headers = []
        self._chunked = False
        if not self._deadline.armed:
            self._deadline.arm()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._head_bytes = 0
        self._deadline.cancel()
        self._heads.append(
            Head(
                method=self.parser.get_method(),
                url=self._url.decode("latin-1"),
                version=self.parser.get_http_version(),
                headers=self._headers,
                upgrade=self.parser.should_upgrade(),
            )
        )

    def on_body(self, body: bytes) -> None:
        if self._chunked:
            body = b"%x\r\n%s\r\n" % (len(body), body)
        self._forward(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._chunked:
            self._forward(b"0\r\n\r\n")

    # -------------------------------------------------------------- requests

    def _dispatch(self, leftover: bytes | None = None) -> None:
        """Act on request heads completed by the last read."""
        while self._heads and not self.closed:
            head = self._heads.pop(0)
            if self._task is not None and not self._task.done():
                # Still connecting for an earlier request: its body is queued; wait.
                self._heads.insert(0, head)
                return
            try:
                self._start_request(head, leftover)
            except ProxyError as exc:
                self.fail(exc)
                return
            except BadTarget as exc:
                self.fail(ProxyError(400, "bad-request", str(exc)))
                return
            except Exception:  # nothing raises past a connection
                log.exception("unexpected error handling a proxy request")
                self.fail(ProxyError(500, "internal", "internal error"))
                return

    def _start_request(self, head: Head, leftover: bytes | None) -> None:
        authorization = _header(head.headers, b"proxy-authorization")
        verified = authorization is not None and authorization == self._credentials
        credentials = None if verified else parse_basic(authorization)
        if not verified and credentials is None:
            raise ProxyError(407, "auth-required", "proxy authentication required")
        if head.method == b"CONNECT":
            destination = parse_authority(head.url)
            request: bytes | None = None
        else:
            destination, target = parse_absolute_url(head.url)
            request = forwarded_head(
                head.method, target, head.version, head.headers, destination, head.upgrade
            )
        tunnel_after = head.method == b"CONNECT" or head.upgrade
        reuse = (
            not tunnel_after
            and self.link is not None
            and not self.link.done
            and destination == self.destination
            and verified
        )
        self._request_started = time.monotonic()
        if reuse:
            assert self.link is not None and request is not None and self.flow is not None
            self.gateway.accounting.request(self.flow)
            self._arm_response_timer()
            self.link.sender.send(request)
            return
        credentials = credentials or parse_basic(authorization)
        assert credentials is not None  # verified credentials parse
        route = parse_username(credentials[0])
        self._drop_link()
        self.flow = Flow(
            "connect" if head.method == b"CONNECT" else "http",
            route.user,
            destination.host,
            destination.port,
        )
        assert self.transport is not None
        self.transport.pause_reading()
        if request is not None:
            self._queued.insert(0, request)
        self._task = asyncio.get_running_loop().create_task(
            self._open(authorization, credentials[1], route, destination, tunnel_after, leftover)
        )

    async def _open(
        self,
        authorization: str | None,
        password: str,
        route: Route,
        destination: Destination,
        tunnel_after: bool,
        leftover: bytes | None,
    ) -> None:
        try:
            identity = await self.gateway.auth.check(route.user, password)
            if identity is None:
                raise ProxyError(407, "auth-failed", "unknown user or wrong password")
            self._credentials = authorization
            assert self.flow is not None
            try:
                await self.gateway.accounting.admit(self.flow, identity)
            except Limited as exc:
                raise ProxyError(429, exc.code, str(exc)) from None
            session, sid = await self._open_stream(route, destination)
        except ProxyError as exc:
            self.fail(exc)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connecting %s failed", destination)
            self.fail(ProxyError(500, "internal", "internal error"))
            return
        if self.closed or self.transport is None:
            session.mux.reset(sid, Reason.CANCELLED, "user went away")
            return
        self.destination = destination
        if tunnel_after:
            link: SocketLink = SocketLink(session.mux, sid, on_close=self.link_closed)
        else:
            link = ResponseLink(self, session, sid)
        self.link = link
        assert self.flow is not None
        self.flow.carried_by(session.agent_id, session.name, link)
        if tunnel_after:
            self.flow.status = 200
            metrics.FIRST_BYTE_CONNECT.observe(time.monotonic() - self._request_started)
        if tunnel_after and not self._queued:
            self.transport.write(CONNECT_OK)  # one write: no Nagle stall between line and blank
            self._responded = True
        link.bind(self.transport)
        self.tunnel = tunnel_after
        queued, self._queued = self._queued, []
        if not tunnel_after:
            self._arm_response_timer()
        for chunk in queued:
            link.sender.send(chunk)
        if leftover:
            link.data_received(leftover)
        self._task = None
        if self._eof_pending:
            self._pass_eof()
        elif not link.sender.backlog_size and not self.transport.is_closing():
            self.transport.resume_reading()
        if self._heads:
            self._dispatch()

    async def _open_stream(
        self, route: Route, destination: Destination
    ) -> tuple[AgentSession, int]:
        """Open a stream on an agent (see :func:`server.streams.open_stream`)."""
        try:
            return await open_stream(self.gateway.hub, route, destination, self.config.open_timeout)
        except OpenFailed as exc:
            raise ProxyError(exc.status, exc.code, str(exc)) from None

    def _forward(self, data: bytes) -> None:
        """Request bytes after a head: to the stream, or queued while it opens."""
        if self._task is None and self.link is not None and not self.link.done:
            self.link.sender.send(data)
        else:
            self._queued.append(data)

    def _drop_link(self) -> None:
        if self.link is not None:
            link, self.link = self.link, None
            link.cancel(Reason.CANCELLED, "user switched destination")
        self._end_flow(None, "ok")

    def _end_flow(self, status: int | None, result: str) -> None:
        if self.flow is not None:
            flow, self.flow = self.flow, None
            self.gateway.accounting.end(flow, status, result)

    # --------------------------------------------------------------- answers

    def link_closed(self, link: SocketLink, error: str | None) -> None:
        """The stream ended; a broken one must look broken to the user."""
        if link is not self.link or self.closed:
            return
        self._cancel_timers()
        if error is not None:
            self.fail(ProxyError(502, "agent-lost", f"the stream broke: {error}"))
        else:
            self._end_flow(None, "ok")

    def response_started(self, data: bytes | memoryview) -> None:
        if self._response_timer.armed:  # the first bytes of a response
            self._response_timer.cancel()
            metrics.FIRST_BYTE_HTTP.observe(time.monotonic() - self._request_started)
            if self.flow is not None and bytes(data[:5]) == b"HTTP/" and len(data) >= 12:
                code = bytes(data[9:12])
                self.flow.status = int(code) if code.isdigit() else None
        self._responded = True
        self._pass_eof()

    def fail(self, error: ProxyError) -> None:
        """Answer with an error (if no response has started) and close."""
        if self.closed or self.transport is None:
            return
        self._cancel_timers()
        self._end_flow(None if self._responded else error.status, error.code)
        if self._responded:
            self.abort()
            return
        self._responded = True
        self.closed = True
        phrase = REASON_PHRASES.get(error.status, "Error")
        body = f"{error.status} {phrase}: {error}\n".encode()
        lines = [
            f"HTTP/1.1 {error.status} {phrase}",
            "Content-Type: text/plain; charset=utf-8",
            f"Content-Length: {len(body)}",
            f"X-Exitpool-Error: {error.code}",
            "Connection: close",
        ]
        if error.status == 407:
            lines.append('Proxy-Authenticate: Basic realm="exitpool"')
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        self.transport.close()
        if self.link is not None:
            self.link.mux.reset(self.link.sid, Reason.CANCELLED, "request failed")

    def abort(self) -> None:
        """Cut the connection so the user sees an error, never a clean end."""
        self.closed = True
        self._cancel_timers()
        if self.transport is not None:
            abort_with_rst(self.transport)

    # ---------------------------------------------------------------- timers

    def _head_timeout(self) -> None:
        if self.link is None and self._task is None:
            self.fail(ProxyError(408, "header-timeout", "request head not received in time"))
        elif self._in_head:
            self.abort()

    def _arm_response_timer(self) -> None:
        self._response_timer.arm()
        self._responded = False

    def _no_response(self) -> None:
        self.fail(
            ProxyError(
                504,
                "target-timeout",
                f"no response from {self.destination} within {self.config.response_timeout:g}s",
            )
        )

    def _cancel_timers(self) -> None:
        self._deadline.cancel()
        self._response_timer.cancel()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None

"""One HTTP/1.1 request and its response over an agent stream, for ``POST /api/v1/fetch``.

The stream is joined to one end of a local socket pair by a
:class:`tunnel.SocketLink`, exactly as a proxy user's socket is, so flow
control is the tunnel's own: a response we have not read yet stops the agent
after one window. The other end is an ordinary asyncio connection, so TLS
(verified against the default trust store, ``SSL_CERT_FILE`` honoured) is
asyncio's own, and the agent only ever carries opaque bytes, as for CONNECT.

:class:`ResponseReader` is the sans-IO half: response bytes in, status,
headers and body out, within the head and body limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools

from server.api.errors import ApiError
from server.http_forward import Destination
from tunnel import Mux, SocketLink
from wire import Reason

READ_SIZE = 64 * 1024

# Never taken from the caller: they belong to this hop, or we compute them.
DROPPED_REQUEST_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
        "content-length",
        "expect",
    }
)


@dataclass(frozen=True, slots=True)
class Request:
    """What is sent to the target (already validated)."""

    method: str
    scheme: str
    destination: Destination
    target: str
    """Origin form: ``/path?query``."""
    headers: list[tuple[str, str]]
    body: bytes

    def head(self) -> bytes:
        """The request head: the caller's headers, Host if they gave none, our framing."""
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        if not any(name.lower() == "host" for name, _ in self.headers):
            lines.append(f"Host: {host_header(self.scheme, self.destination)}")
        lines.extend(
            f"{name}: {value}"
            for name, value in self.headers
            if name.lower() not in DROPPED_REQUEST_HEADERS
        )
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def host_header(scheme: str, destination: Destination) -> str:
    """``host[:port]``, the port left out when it is the scheme's default."""
    text = str(destination)
    default = 443 if scheme == "https" else 80
    return text.rpartition(":")[0] if destination.port == default else text


@dataclass(slots=True)
class ResponseReader:
    """Parses one HTTP/1.1 response; raises :class:`ApiError` (502) when it is bad or too big.

    ``head_only``: the request was HEAD, so the response has no body whatever
    its headers say. Interim 1xx responses are skipped.
    """

    max_head: int
    max_body: int
    head_only: bool = False
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False
    _parser: httptools.HttpResponseParser | None = None
    _head_size: int = 0
    _in_head: bool = True
    _framed: bool = False
    """The body's end is known (Content-Length or chunked), so EOF before it is a truncation."""
    _error: ApiError | None = None

    def __post_init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        """Parse response bytes; sets ``complete`` once the whole response is in."""
        assert self._parser is not None
        if self.complete:
            return
        if self._in_head:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            pass  # one of our callbacks refused: _error says why
        except httptools.HttpParserError as exc:
            raise ApiError(502, "bad-response", f"the target sent malformed HTTP: {exc}") from None
        if self._error is not None:
            raise self._error
        if self._in_head and self._head_size > self.max_head:
            raise self._too_big_head()

    def feed_eof(self) -> None:
        """The target closed: the end of an unframed body, or a truncated response."""
        if self.complete:
            return
        if not self._in_head and not self._framed:
            self.complete = True  # the body ran to the end of the connection
            return
        where = "its headers" if self._in_head else "the body"
        raise ApiError(
            502, "bad-response", f"the target closed the connection in the middle of {where}"
        )

    # -------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        self._in_head = True
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200:
            return  # interim (100 Continue, 103 Early Hints): the real response follows
        self._in_head = False
        names = {name.lower(): value for name, value in self.headers}
        self._framed = (
            "content-length" in names or "chunked" in names.get("transfer-encoding", "").lower()
        )
        length = names.get("content-length", "")
        if self.head_only:
            self.complete = True
        elif length.isdigit() and int(length) > self.max_body:
            self._fail(self._too_big_body())

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        if len(self.body) + len(body) > self.max_body:
            self._fail(self._too_big_body())
            return
        self.body += body

    def on_message_complete(self) -> None:
        if self._in_head:  # the end of an interim response
            self._head_size = 0
            return
        self.complete = True

    # -------------------------------------------------------------- internals

    def _fail(self, error: ApiError) -> None:
        self._error = error
        raise error  # httptools stops parsing and raises HttpParserCallbackError

    def _too_big_body(self) -> ApiError:
        return ApiError(
            502,
            "response-too-large",
            f"the response body is over {self.max_body} bytes (api_max_response_body)",
        )

    def _too_big_head(self) -> ApiError:
        return ApiError(502, "bad-response", f"the response head is over {self.max_head} bytes")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default, verifying client context (built once: loading the trust store is slow)."""
    return ssl.create_default_context()


class AgentConnection:
    """A local socket pair whose far end becomes an agent stream (see the module docstring).

    Create it with :meth:`create` before the stream is opened, so that
    :meth:`join` can attach the stream in the same loop step as the agent's
    OPEN_OK: no byte from the agent can arrive before someone reads it.
    """

    def __init__(self, transport: asyncio.Transport, local: socket.socket) -> None:
        self._transport = transport
        self._local = local
        self.link: SocketLink | None = None
        self.link_error: str | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    async def create(cls) -> AgentConnection:
        loop = asyncio.get_running_loop()
        ours, local = socket.socketpair()
        try:
            transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, sock=ours)
        except BaseException:
            ours.close()
            local.close()
            raise
        return cls(transport, local)

    def join(self, mux: Mux, sid: int) -> SocketLink:
        """Join the accepted stream ``sid`` to the socket pair (no await before this)."""
        link = SocketLink(mux, sid, on_close=self._link_closed)
        self._transport.set_protocol(link)
        link.bind(self._transport)
        self.link = link
        return link

    async def exchange(
        self, request: Request, response: ResponseReader, on_first_byte: Callable[[], None]
    ) -> None:
        """Send ``request`` and read its answer into ``response`` until it is complete.

        ``on_first_byte`` is called when the first response byte arrives (the
        latency metric). Raises :class:`ApiError` for a failed TLS handshake, a
        broken stream or a bad response.
        """
        tls = request.scheme == "https"
        try:
            reader, self._writer = await asyncio.open_connection(
                sock=self._local,
                ssl=tls_context() if tls else None,
                server_hostname=request.destination.host if tls else None,
                limit=READ_SIZE,
            )
        except OSError as exc:  # ssl.SSLError included
            raise self._broken() or ApiError(
                502, "tls-failed", f"TLS with {request.destination} failed: {exc}"
            ) from None
        # The whole request is in memory already (within api_max_request_body): the
        # transport sends it as the stream's credit allows; no drain needed.
        self._writer.write(request.head())
        if request.body:
            self._writer.write(request.body)
        first = True
        while not response.complete:
            try:
                data = await reader.read(READ_SIZE)
            except OSError as exc:
                raise self._broken() or ApiError(
                    502, "agent-lost", f"the connection to the target broke: {exc}"
                ) from None
            if first:
                first = False
                on_first_byte()
            if not data:
                # A reset stream also ends in EOF here: it must not pass for a complete body.
                if (broken := self._broken()) is not None:
                    raise broken
                response.feed_eof()
                return
            response.feed(data)

    def close(self) -> None:
        """Drop the stream (the agent closes its target connection) and both sockets."""
        if self.link is not None and not self.link.done:
            self.link.cancel(Reason.CANCELLED, "the API fetch is over")
        self._transport.abort()
        if self._writer is not None:
            self._writer.transport.abort()
        else:
            with contextlib.suppress(OSError):
                self._local.close()

    def _link_closed(self, link: SocketLink, error: str | None) -> None:
        self.link_error = error

    def _broken(self) -> ApiError | None:
        if self.link_error is None:
            return None
        return ApiError(502, "agent-lost", f"the stream broke: {self.link_error}")

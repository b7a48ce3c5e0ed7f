"""``POST /api/v1/fetch``: the server performs one HTTP request through an agent.

:meth:`FetchRequest.parse` turns the caller's JSON into a validated request
(or an :class:`ApiError`); :func:`fetch` admits it against the caller's
limits, opens a stream exactly as the proxy does (same agent choice, same
``session`` stickiness and ``agent`` pinning, same error codes), runs the
HTTP/1.1 exchange and accounts for it as a flow of kind ``api``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from server import metrics
from server.accounting import Flow, Limited
from server.api.errors import ApiError
from server.api.exchange import AgentConnection, Request, ResponseReader
from server.config import ServerConfig
from server.http_forward import BadTarget, Destination, parse_authority
from server.live import Live
from server.proxy_auth import ProxyIdentity
from server.routing import Route
from server.streams import OpenFailed, open_stream

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP token (RFC 9110): what a method or a header name may be made of."""

HOST = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")
"""A host name (after IDNA), an IPv4 address or an IPv6 address without brackets."""

FIELDS = frozenset(
    {"url", "method", "headers", "body", "body_base64", "session", "agent", "timeout"}
)


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """A caller's fetch, checked: what to send, which agents may carry it, how long to wait."""

    request: Request
    route: Route
    timeout: float

    @classmethod
    def parse(cls, data: Any, user: str, config: ServerConfig) -> FetchRequest:
        """Validate the JSON object of ``POST /api/v1/fetch`` (400 or 413 on a bad one)."""
        if not isinstance(data, dict):
            raise _bad("the request body must be a JSON object")
        unknown = sorted(set(data) - FIELDS)
        if unknown:
            raise _bad(f"unknown field(s): {', '.join(unknown)}")
        url = data.get("url")
        if not isinstance(url, str) or not url:
            raise _bad("url is required: an http:// or https:// URL")
        scheme, destination, target = _parse_url(url)
        method = data.get("method", "GET")
        if not isinstance(method, str) or not TOKEN.fullmatch(method):
            raise _bad("method must be an HTTP method such as GET or POST")
        method = method.upper()
        if method == "CONNECT":
            raise _bad("CONNECT is not a fetch: use the proxy port for tunnels")
        body = _body(data, config.api_max_request_body)
        timeout = data.get("timeout", config.api_default_timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise _bad("timeout must be a positive number of seconds")
        return cls(
            request=Request(
                method=method,
                scheme=scheme,
                destination=destination,
                target=target,
                headers=_headers(data.get("headers")),
                body=body,
            ),
            route=Route(
                user=user,
                session=_option(data, "session"),
                agent=_option(data, "agent"),
            ),
            timeout=min(float(timeout), config.api_max_timeout),
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The target's answer and who carried it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    agent: str
    exit_ip: str
    elapsed_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": [[name, value] for name, value in self.headers],
            "body": base64.b64encode(self.body).decode("ascii"),
            "agent": self.agent,
            "exit_ip": self.exit_ip,
            "elapsed_ms": self.elapsed_ms,
        }


async def fetch(running: Live, identity: ProxyIdentity, fetch_request: FetchRequest) -> FetchResult:
    """Perform ``fetch_request`` through an agent; raises :class:`ApiError`.

    The flow is always ended in the accounting, with ``ok`` or the error code
    (``client-closed`` if the caller went away), so the request log and the
    caller's usage see every fetch.
    """
    started = time.monotonic()
    request = fetch_request.request
    destination = request.destination
    flow = Flow("api", identity.name, destination.host, destination.port)
    status: int | None = None
    result = "internal"
    connection: AgentConnection | None = None
    try:
        try:
            await running.accounting.admit(flow, identity)
        except Limited as exc:
            raise ApiError(429, exc.code, str(exc)) from None
        response = ResponseReader(
            max_head=running.config.max_header_bytes,
            max_body=running.config.api_max_response_body,
            head_only=request.method == "HEAD",
        )
        try:
            async with asyncio.timeout(fetch_request.timeout):
                connection = await AgentConnection.create()
                try:
                    session, sid = await open_stream(
                        running.hub,
                        fetch_request.route,
                        destination,
                        min(running.config.open_timeout, fetch_request.timeout),
                    )
                except OpenFailed as exc:
                    raise ApiError(exc.status, exc.code, str(exc)) from None
                flow.carried_by(session.agent_id, session.name, connection.join(session.mux, sid))
                await connection.exchange(
                    request,
                    response,
                    lambda: metrics.FIRST_BYTE.labels("api").observe(time.monotonic() - started),
                )
        except TimeoutError:
            raise ApiError(
                504,
                "target-timeout",
                f"no complete response from {destination} within {fetch_request.timeout:g}s",
            ) from None
        status, result = response.status, "ok"
        return FetchResult(
            status=response.status,
            headers=response.headers,
            body=bytes(response.body),
            agent=session.name,
            exit_ip=session.exit_ip,
            elapsed_ms=int((time.monotonic() - started) * 1000),
        )
    except ApiError as exc:
        status, result = exc.status, exc.code
        raise
    except asyncio.CancelledError:
        result = "client-closed"
        raise
    finally:
        if connection is not None:
            connection.close()
        running.accounting.end(flow, status, result)


# ----------------------------------------------------------------- validation


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad-request", message)


def _parse_url(url: str) -> tuple[str, Destination, str]:
    """``http(s)://host[:port]/path?query`` → scheme, destination and origin-form target."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad(f"bad url: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _bad("url must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise _bad("put credentials in an Authorization header, not in the url")
    host = parts.hostname or ""
    if not host:
        raise _bad("bad url: no host")
    try:
        # An international name goes out in its ASCII (punycode) form.
        host = host if host.isascii() else host.encode("idna").decode("ascii")
        authority = f"[{host}]" if ":" in host else host
        if port is None:
            port = 443 if scheme == "https" else 80
        destination = parse_authority(f"{authority}:{port}")
    except (UnicodeError, BadTarget) as exc:
        raise _bad(f"bad url: {exc}") from None
    if not HOST.fullmatch(destination.host):
        raise _bad(f"bad url: {host!r} is not a host name or an IP address")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if any(c in target for c in " \r\n\t\0") or not target.isascii():
        raise _bad("bad url: the path must be ASCII without spaces (percent-encode the rest)")
    return scheme, destination, target


def _headers(value: Any) -> list[tuple[str, str]]:
    """``{"Name": "value"}`` or ``[["Name", "value"], ...]`` (repeats allowed) → pairs."""
    if value is None:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 for pair in value
    ):
        pairs = [(pair[0], pair[1]) for pair in value]
    else:
        raise _bad('headers must be an object {"Name": "value"} or a list of [name, value] pairs')
    for name, text in pairs:
        if not isinstance(name, str) or not TOKEN.fullmatch(name):
            raise _bad(f"bad header name {name!r}")
        if (
            not isinstance(text, str)
            or any(c in text for c in "\r\n\0")
            or not all(ord(c) < 256 for c in text)
        ):
            raise _bad(f"bad value for header {name}: a latin-1 string on one line")
    return pairs


def _body(data: dict[str, Any], limit: int) -> bytes:
    """``body`` (text, sent as UTF-8) or ``body_base64`` (bytes); 413 beyond ``limit``."""
    text, encoded = data.get("body"), data.get("body_base64")
    if text is not None and encoded is not None:
        raise _bad("give body or body_base64, not both")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise _bad("body_base64 must be a base64 string")
        if len(encoded) // 4 * 3 > limit + 2:
            raise _too_large(limit)  # refused before decoding
        try:
            body = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _bad("body_base64 is not valid base64") from None
    elif text is not None:
        if not isinstance(text, str):
            raise _bad("body must be a string (use body_base64 for bytes)")
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad("body is not valid Unicode text (use body_base64 for bytes)") from None
    else:
        body = b""
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "body-too-large", f"the request body is over {limit} bytes (api_max_request_body)"
    )


def _option(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 200:
        raise _bad(f"{name} must be a non-empty string")
    return value

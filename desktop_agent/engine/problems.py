"""Why the agent cannot connect, as a kind the tray shows and a sentence the owner reads.

Both the engine's reconnect loop and :func:`~desktop_agent.engine.check.check_connection`
turn what aiohttp raised into a :class:`Problem` and one plain sentence here,
so the Settings dialog's "Test connection" says exactly what the tray will.
"""

from __future__ import annotations

import enum
import socket
import ssl
from urllib.parse import urlsplit

import aiohttp


class Problem(enum.Enum):
    """What keeps the agent from sharing, when it is not simply connecting."""

    UNREACHABLE = "unreachable"
    """DNS failure, refused or timed-out connection, or something that is not an Exitpool server."""
    TLS = "tls"
    """The server's certificate is not trusted, or TLS failed."""
    BAD_KEY = "bad_key"
    """The server refused the enrollment key (unknown, expired or revoked)."""
    REVOKED = "revoked"
    """The server refused this PC's own credential: an admin removed it."""
    NO_KEY = "no_key"
    """No credential yet and no enrollment key to get one."""


REFUSED_STATUSES = frozenset({401, 403})
"""Handshake answers meaning "credential or key refused" (daphne answers a refusal with 403)."""


def refusal(used_credential: bool, status: int) -> tuple[Problem, str]:
    """The problem when the server refused the handshake with ``status`` (401/403)."""
    if used_credential:
        return Problem.REVOKED, (
            f"the server refused this agent's credential (HTTP {status}): "
            "the admin revoked it or removed this PC"
        )
    return Problem.BAD_KEY, (
        f"the server refused the enrollment key (HTTP {status}): unknown, expired or revoked"
    )


def not_exitpool(server_url: str, detail: str) -> tuple[Problem, str]:
    """The address answers, but not as an Exitpool server would."""
    return Problem.UNREACHABLE, f"{_where(server_url)} is not an Exitpool server ({detail})"


def classify(exc: BaseException, server_url: str) -> tuple[Problem, str]:
    """The problem and sentence for a failure to connect (anything but a refusal)."""
    where = _where(server_url)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Problem.TLS, f"the certificate of {where} is not trusted: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError) or _caused_by(exc, ssl.SSLError):
        return Problem.TLS, f"the secure connection to {where} failed: {_text(exc)}"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return not_exitpool(server_url, f"it answered HTTP {exc.status}")
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, socket.gaierror):
        return Problem.UNREACHABLE, f"the name {urlsplit(server_url).hostname} does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or _text(exc.os_error)
        return Problem.UNREACHABLE, f"cannot connect to {where}: {reason}"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return Problem.UNREACHABLE, f"{where} did not answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return not_exitpool(server_url, "it closed the connection without a WebSocket answer")
    return Problem.UNREACHABLE, f"cannot reach {where}: {_text(exc)}"


def _where(server_url: str) -> str:
    parts = urlsplit(server_url)
    return parts.netloc or server_url


def _text(exc: BaseException) -> str:
    return str(exc) or exc.__class__.__name__


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # a cause chain is short; a loop in it must not hang us
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

"""Turning a proxy request into the request the target should see.

A request arriving at a forward proxy names its destination in absolute form
(``GET http://host:port/path``). The target must get origin form
(``GET /path``), a Host header, and none of the hop-by-hop or proxy headers —
above all never the user's ``Proxy-Authorization``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    }
)


class BadTarget(ValueError):
    """The request does not name a destination this proxy can serve (answered with 400)."""


@dataclass(frozen=True, slots=True)
class Destination:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_authority(authority: str, default_port: int | None = None) -> Destination:
    """``host:port`` or ``[v6]:port`` (CONNECT's request target) → :class:`Destination`."""
    authority = authority.strip()
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise BadTarget(f"bad destination {authority!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = authority.rpartition(":")
        if not sep:
            host, port_text = authority, ""
    if not port_text:
        if default_port is None:
            raise BadTarget("CONNECT needs host:port")
        port = default_port
    elif port_text.isascii() and port_text.isdigit():
        port = int(port_text)
    else:
        raise BadTarget(f"bad port in {authority!r}")
    if not host or not 1 <= port <= 65535 or any(c in host for c in "/@ \t"):
        raise BadTarget(f"bad destination {authority!r}")
    return Destination(host.lower(), port)


def parse_absolute_url(url: str) -> tuple[Destination, str]:
    """``http://host:port/path?q`` → destination and origin-form target ``/path?q``."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BadTarget(f"bad URL: {exc}") from None
    if parts.scheme.lower() != "http":
        if parts.scheme.lower() == "https":
            raise BadTarget("https:// URLs go through CONNECT (use an https-capable client)")
        raise BadTarget("this is a proxy: send absolute-form requests (GET http://host/path)")
    if parts.username is not None or not parts.netloc:
        raise BadTarget("bad URL authority")
    destination = parse_authority(parts.netloc.rpartition("@")[2], default_port=80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return destination, target


def forwarded_head(
    method: bytes,
    target: str,
    version: str,
    headers: list[tuple[bytes, bytes]],
    destination: Destination,
    upgrade: bool = False,
) -> bytes:
    """The request head to send to the target.

    Hop-by-hop headers are dropped, along with any header the ``Connection``
    header lists. ``Connection: close`` is kept so the target closes as the
    client asked; ``Upgrade`` requests keep their upgrade headers.
    """
    listed: set[bytes] = set()
    close = False
    for name, value in headers:
        if name.lower() in (b"connection", b"proxy-connection"):
            tokens = {t.strip().lower() for t in value.split(b",")}
            close |= b"close" in tokens
            listed |= tokens
    keep_upgrade = upgrade and b"upgrade" in listed
    lines = [b"%s %s HTTP/%s" % (method, target.encode("latin-1"), version.encode("ascii"))]
    has_host = False
    for name, value in headers:
        lower = name.lower()
        if keep_upgrade and lower == b"upgrade":
            lines.append(name + b": " + value)
            continue
        if lower in HOP_BY_HOP or lower in listed:
            continue
        if lower == b"host":
            has_host = True
        lines.append(name + b": " + value)
    if not has_host:
        host = str(destination)
        if destination.port == 80:
            host = host.rpartition(":")[0]
        lines.insert(1, b"Host: " + host.encode("latin-1"))
    if keep_upgrade:
        lines.append(b"Connection: Upgrade")
    elif close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"

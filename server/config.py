"""Every setting of the server process, named once with its default.

``ServerConfig.from_env()`` reads ``EXITPOOL_*`` variables; ``exitpool-server run``
flags override them. One object is built per process and passed down to the
hub, the gateway and the agent endpoint.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from exitpool import __version__


def default_data_dir() -> Path:
    return Path(os.environ.get("EXITPOOL_DATA_DIR", "var")).resolve()


def split_host_port(value: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``"HOST:PORT"``, ``":PORT"``, ``"PORT"`` or ``"[::1]:PORT"`` → ``(host, port)``."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or default_host
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host, number


@dataclass(frozen=True)
class ServerConfig:
    """Settings of ``exitpool-server run``. Environment: ``EXITPOOL_<FIELD NAME IN CAPS>``."""

    http: str = "0.0.0.0:8000"
    """Where daphne serves the admin, dashboard, API and the agents' WebSocket."""
    proxy: str = "0.0.0.0:8899"
    """Where the gateway accepts proxy users."""
    max_header_bytes: int = 64 * 1024
    """Largest request head (request line + headers) a proxy user may send; more is a 431."""
    header_timeout: float = 10.0
    """Seconds a proxy user has to send a complete request head (slowloris guard)."""
    open_timeout: float = 15.0
    """Seconds to wait for an agent to connect to a target before answering 504."""
    response_timeout: float = 60.0
    """Seconds a forwarded plain-HTTP request waits for the first response byte (then 504)."""
    agent_hello_timeout: float = 10.0
    """Seconds an agent has to send HELLO after its WebSocket opens."""
    auth_cache_seconds: float = 60.0
    """How long a verified proxy password is trusted without asking the database again; for
    as long again it still lets a request in while it is checked behind it."""
    sticky_sessions_max: int = 100_000
    """Sticky ``-session-`` routes remembered at once (least recently used are forgotten)."""
    stream_window: int = 256 * 1024
    """Per-stream flow-control window granted to agents, in bytes."""
    max_frame_payload: int = 256 * 1024
    """Largest frame payload accepted from an agent, in bytes."""
    max_ws_message: int = 1024 * 1024
    """Largest WebSocket message accepted from an agent (daphne's limit), in bytes."""
    max_streams_per_agent: int = 1024
    """Streams open at once on one agent; beyond it the gateway picks another agent."""
    ws_ping_interval: float = 20.0
    """Seconds between server pings to each agent."""
    ws_ping_timeout: float = 30.0
    """Seconds without a pong after which the server drops an agent."""
    max_proxy_connections: int = 10_000
    """Proxy user connections open at once; more are answered 503 at once and closed, so a
    flood cannot use up the file descriptors agents and the database need. ``run`` lowers it
    to half the process's open-file limit when that is smaller."""
    user_max_streams: int = 256
    """Streams a proxy user may have open at once, unless their own limit says otherwise (429)."""
    flush_interval: float = 5.0
    """Seconds between writes of the in-memory counters and request log to the database."""
    log_retention_days: float = 30.0
    """Days request-log rows are kept; older ones are pruned automatically."""
    api_max_request_body: int = 1024 * 1024
    """Largest request body ``POST /api/v1/fetch`` will send, in bytes (413 beyond)."""
    api_max_response_body: int = 10 * 1024 * 1024
    """Largest response body ``POST /api/v1/fetch`` will return, in bytes (502 beyond)."""
    api_default_timeout: float = 30.0
    """Seconds ``POST /api/v1/fetch`` waits for a whole response unless the caller asks less."""
    api_max_timeout: float = 120.0
    """Longest ``timeout`` a caller of ``POST /api/v1/fetch`` may ask for."""
    metrics_token: str = ""
    """If set, ``/metrics`` requires ``Authorization: Bearer <token>``."""
    trusted_proxies: str = ""
    """Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed."""
    min_agent_version: str = __version__
    """Agents older than this are flagged in the admin (and logged when they connect), so
    IT knows which PCs need the new installer; they keep working."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int | float) and not (0 <= value < math.inf):
                raise ValueError(f"{field.name} must be a finite number >= 0, not {value!r}")
        split_host_port(self.http)
        split_host_port(self.proxy)
        try:
            Version(self.min_agent_version)
        except InvalidVersion:
            raise ValueError(
                f"min_agent_version must be a version like 0.2.0, not {self.min_agent_version!r}"
            ) from None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerConfig:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = environ.get(f"EXITPOOL_{field.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(cls, field.name))
            try:
                values[field.name] = kind(raw)
            except ValueError:
                name = f"EXITPOOL_{field.name.upper()}"
                raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"EXITPOOL_* setting: {exc}") from None

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        """A copy with the given settings changed; ``None`` means "not given"."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def http_address(self) -> tuple[str, int]:
        return split_host_port(self.http)

    @property
    def proxy_address(self) -> tuple[str, int]:
        return split_host_port(self.proxy)

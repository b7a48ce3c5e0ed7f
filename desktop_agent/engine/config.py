"""Every setting of the agent, named once with its default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from desktop_agent.engine.guard import DEFAULT_BLOCKED_PORTS


def default_config_dir() -> Path:
    """Where the agent keeps its credential and state (``EXITPOOL_AGENT_HOME`` overrides)."""
    env = os.environ.get("EXITPOOL_AGENT_HOME")
    return Path(env) if env else Path(platformdirs.user_config_dir("exitpool-agent", "Exitpool"))


@dataclass(frozen=True)
class AgentConfig:
    """One agent process's settings, built by the CLI (or the tray's settings) and passed down."""

    server_url: str
    """The server's agent WebSocket, e.g. ``ws://proxy.example.com:8000/ws/agent``."""
    enrollment_key: str | None = None
    """Used once, to obtain this agent's own credential; not needed after that."""
    name: str = ""
    """Display name asked for at enrollment (default: the host name)."""
    source_address: str | None = None
    """Local address for every outgoing connection (targets and the server)."""
    allowed_networks: tuple[str, ...] = ()
    """The owner's widening of the guard (e.g. ``127.0.0.0/8`` in tests)."""
    blocked_networks: tuple[str, ...] = ()
    """Extra destinations the owner refuses, on top of the built-in private ranges."""
    blocked_ports: frozenset[int] = DEFAULT_BLOCKED_PORTS
    """Destination ports refused (SMTP by default: the PC must not become a mail relay)."""
    config_dir: Path = field(default_factory=default_config_dir)
    max_streams: int = 256
    """Streams carried at once unless the owner's rules say otherwise; more OPENs are
    refused so the server picks another agent."""
    connect_timeout: float = 10.0
    """Seconds to connect to a target before answering OPEN_FAIL timeout."""
    ping_interval: float = 20.0
    """Seconds between pings to the server."""
    ping_timeout: float = 20.0
    """Seconds of silence after a ping before the connection is declared dead."""
    backoff_initial: float = 1.0
    """First reconnect delay ceiling, in seconds; doubles per failure."""
    backoff_max: float = 60.0
    """Reconnect delays never exceed this."""
    stats_interval: float = 10.0
    """Seconds between STATS messages to the server."""
    stream_window: int = 256 * 1024
    """Per-stream window this agent grants the server, in bytes."""
    max_ws_message: int = 1024 * 1024
    """Largest WebSocket message accepted from the server."""
    probe_timeout: float = 5.0
    """Seconds a ping asked for by :meth:`AgentEngine.reconnect_now` may go unanswered."""
    suspend_gap: float = 10.0
    """A sample arriving this many seconds late means the PC slept: reconnect at once."""
    sample_interval: float = 1.0
    """Seconds between traffic samples and re-checks of schedule, daily cap and timed pause."""
    rate_history_seconds: int = 600
    """Seconds of rate samples kept for the owner's chart."""
    traffic_save_interval: float = 60.0
    """Seconds between writes of the traffic totals (also written when the engine stops)."""
    max_recent_destinations: int = 200
    """Destinations kept for the owner's list; the least recently used go first."""
    bandwidth_burst: float = 0.25
    """Seconds of the bandwidth limit that may pass at once after a quiet moment."""

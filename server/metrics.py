"""The server's Prometheus metrics, in a registry of its own.

Counters are bumped by :mod:`server.accounting` (once per flow or per tick,
never per relayed chunk) and by the gateway (latency). What is a state rather
than an event (agents by state, streams open) is read from the hub when
``/metrics`` is scraped, by :class:`LiveCollector`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from server.hub import Hub

REGISTRY = CollectorRegistry(auto_describe=True)

BYTES = Counter(
    "exitpool_bytes",
    "Bytes relayed between users and targets, by direction (up: user to target).",
    ["direction"],
    registry=REGISTRY,
)
REQUESTS = Counter(
    "exitpool_requests",
    "Proxied connections and API fetches that ended, by result (ok or the error code).",
    ["kind", "result"],
    registry=REGISTRY,
)
FIRST_BYTE = Histogram(
    "exitpool_gateway_first_byte_seconds",
    "From a request's arrival to the first byte from the agent "
    "(the tunnel's OPEN_OK for CONNECT, the response's first byte for plain HTTP).",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
# The children used per request or per flow, looked up once.
BYTES_UP = BYTES.labels("up")
BYTES_DOWN = BYTES.labels("down")
FIRST_BYTE_HTTP = FIRST_BYTE.labels("http")
FIRST_BYTE_CONNECT = FIRST_BYTE.labels("connect")


class LiveCollector(Collector):
    """Agents by state and streams open, read from the hub at scrape time."""

    def __init__(self, hub: Callable[[], Hub | None], registered_agents: Callable[[], int]) -> None:
        self._hub = hub
        self._registered = registered_agents

    def describe(self) -> Iterator[Metric]:
        """The metric names, without reading anything (registration must not touch the DB)."""
        yield GaugeMetricFamily("exitpool_agents", "Enrolled agents by state.", labels=["state"])
        yield GaugeMetricFamily("exitpool_streams_open", "Streams open on all agents.")

    def collect(self) -> Iterator[Metric]:
        hub = self._hub()
        sessions = list(hub.sessions.values()) if hub is not None else []
        paused = sum(1 for s in sessions if s.paused or s.admin_paused)
        agents = GaugeMetricFamily("exitpool_agents", "Enrolled agents by state.", labels=["state"])
        agents.add_metric(["online"], len(sessions) - paused)
        agents.add_metric(["paused"], paused)
        agents.add_metric(["offline"], max(0, self._registered() - len(sessions)))
        yield agents
        yield GaugeMetricFamily(
            "exitpool_streams_open",
            "Streams open on all agents.",
            value=sum(s.open_streams for s in sessions),
        )

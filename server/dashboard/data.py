"""The dashboard's numbers: one JSON-ready snapshot of the fleet and its traffic.

Two halves, because they live in two places. What is online — the hub's
sessions and the live byte rates — is memory owned by the server's event loop:
:func:`read_live` copies it into plain frozen values and must run on that loop
(:func:`current_live` gets it there with :meth:`server.live.Live.call`). The
rest — enrolled agents, today's usage, the last hour's traffic and request
log — comes from the database in :func:`snapshot`, which runs in a Django
worker thread. Outside ``exitpool-server run`` there is no live state and every
agent is shown offline.

Times are epoch seconds and the snapshot carries the server's clock, so the
browser shows "3 min ago" against the server's time, not its own.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import Count, F, Q, QuerySet, Sum
from django.urls import reverse

from server import live
from server.accounting import Accounting
from server.fleet.models import Agent, AgentDayUsage, RequestLog, TrafficMinute
from server.hub import Hub

WINDOW_MINUTES = 60
"""The charts and top lists cover this many minutes up to now."""

TOP_COUNT = 10
"""Rows in each top list (destinations, users)."""

STATE_ORDER = {"online": 0, "paused": 1, "offline": 2}

T = TypeVar("T")


class CostlyQuery(Generic[T]):
    """A computation whose result is reused for ``factor`` times as long as it took.

    Once the request log holds many rows, its summaries take real time (about
    a second for 300,000 rows an hour on SQLite) while every open dashboard
    asks every two seconds. Results that took longer than ``threshold`` seconds
    are reused for ``factor`` times that long, so the dashboard spends at most
    about 1/(1 + ``factor``) of a thread on them; cheap ones are always fresh.
    """

    def __init__(
        self,
        compute: Callable[..., T],
        threshold: float = 0.1,
        factor: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._threshold = threshold
        self._factor = factor
        self._clock = clock
        self._lock = threading.Lock()
        self._result: T | None = None
        self._valid_until = 0.0

    def __call__(self, *args: Any) -> T:
        """The reused result while it is valid, otherwise ``compute(*args)``."""
        with self._lock:  # one computation at a time; the others wait and reuse it
            if self._result is not None and self._clock() < self._valid_until:
                return self._result
            started = self._clock()
            result = self._compute(*args)
            took = self._clock() - started
            self._result = result
            self._valid_until = (
                started + took * (1 + self._factor) if took > self._threshold else 0.0
            )
            return result


@dataclass(frozen=True, slots=True)
class LiveAgent:
    """One online agent as the hub saw it at one instant."""

    agent_id: int
    name: str
    exit_ip: str
    paused_by_owner: bool
    paused_by_admin: bool
    paused_since: float | None
    connected_at: float
    open_streams: int
    max_streams: int
    os: str
    agent_version: str
    rate_up: float
    rate_down: float


@dataclass(frozen=True, slots=True)
class LiveState:
    """Everything the dashboard needs from memory, copied at one instant."""

    agents: dict[int, LiveAgent]
    total_rate: tuple[float, float]


def read_live(hub: Hub, accounting: Accounting) -> LiveState:
    """Copy the online agents and rates; call on the event loop that owns them."""
    agents = {}
    for agent_id, session in hub.sessions.items():
        rate_up, rate_down = accounting.agent_rates.get(agent_id, (0.0, 0.0))
        agents[agent_id] = LiveAgent(
            agent_id=agent_id,
            name=session.name,
            exit_ip=session.exit_ip,
            paused_by_owner=session.paused,
            paused_by_admin=session.admin_paused,
            paused_since=session.paused_since,
            connected_at=session.connected_at,
            open_streams=session.open_streams,
            max_streams=session.max_streams,
            os=str(session.facts.get("os") or ""),
            agent_version=str(session.facts.get("agent_version") or ""),
            rate_up=rate_up,
            rate_down=rate_down,
        )
    return LiveState(agents=agents, total_rate=accounting.total_rate)


def current_live() -> LiveState | None:
    """The live state of this server process, or None outside ``exitpool-server run``."""
    running = live.current()
    if running is None:
        return None
    return running.call(functools.partial(read_live, running.hub, running.accounting))


def snapshot(state: LiveState | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The whole dashboard as JSON-ready data (see the module docstring for the halves)."""
    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(minutes=WINDOW_MINUTES)
    agents = _agents(state, now.date())
    traffic = _traffic(now)
    log = RequestLog.objects.filter(time__gte=since, time__lte=now)
    total_up, total_down = state.total_rate if state is not None else (0.0, 0.0)
    return {
        "server_time": now.timestamp(),
        "live": state is not None,
        "counts": {
            name: sum(1 for agent in agents if agent["state"] == name) for name in STATE_ORDER
        },
        "rate": {"up": total_up, "down": total_down},
        "agents": agents,
        "traffic": traffic,
        "last_hour": {
            "requests": sum(traffic["requests"]),
            "errors": sum(traffic["errors"]),
            "bytes_up": sum(traffic["bytes_up"]),
            "bytes_down": sum(traffic["bytes_down"]),
        },
        **_log_summary(log),
    }


def _agents(state: LiveState | None, today: dt.date) -> list[dict[str, Any]]:
    """Online agents (from memory) and enrolled, unrevoked offline ones (from the database).

    An agent revoked a moment ago stays listed while it is still connected.
    """
    online = state.agents if state is not None else {}
    known = {
        agent.pk: agent
        for agent in Agent.objects.filter(Q(revoked_at__isnull=True) | Q(pk__in=list(online)))
    }
    usage = {
        agent_id: (up, down)
        for agent_id, up, down in AgentDayUsage.objects.filter(
            day=today, agent_id__in=list(known)
        ).values_list("agent_id", "bytes_up", "bytes_down")
    }
    rows = []
    for agent_id in sorted(set(known) | set(online)):
        stored, session = known.get(agent_id), online.get(agent_id)
        row = _online_row(session, stored) if session is not None else _offline_row(known[agent_id])
        row["today_up"], row["today_down"] = usage.get(agent_id, (0, 0))
        rows.append(row)
    rows.sort(key=lambda row: (STATE_ORDER[row["state"]], row["name"].lower()))
    return rows


def _identity(agent_id: int, name: str, stored: Agent | None) -> dict[str, Any]:
    """What the database says about an agent (if it still has it)."""
    return {
        "id": agent_id,
        "name": name,
        "label": stored.label if stored else "",
        "admin_url": reverse("admin:fleet_agent_change", args=[agent_id]) if stored else None,
        "last_seen": stored.last_seen.timestamp() if stored and stored.last_seen else None,
    }


def _online_row(session: LiveAgent, stored: Agent | None) -> dict[str, Any]:
    paused_by = [
        who
        for who, paused in (("owner", session.paused_by_owner), ("admin", session.paused_by_admin))
        if paused
    ]
    return _identity(session.agent_id, session.name, stored) | {
        "state": "paused" if paused_by else "online",
        "paused_by": paused_by,
        "since": session.paused_since if paused_by else session.connected_at,
        "exit_ip": session.exit_ip,
        "open_streams": session.open_streams,
        "max_streams": session.max_streams,
        "rate_up": session.rate_up,
        "rate_down": session.rate_down,
        "os": session.os or (stored.os if stored else ""),
        "agent_version": session.agent_version or (stored.agent_version if stored else ""),
    }


def _offline_row(stored: Agent) -> dict[str, Any]:
    row = _identity(stored.pk, stored.name, stored)
    return row | {
        "state": "offline",
        "paused_by": ["admin"] if stored.paused_by_admin else [],
        "since": row["last_seen"],
        "exit_ip": stored.last_exit_ip or "",
        "open_streams": 0,
        "max_streams": stored.max_streams,
        "rate_up": 0.0,
        "rate_down": 0.0,
        "os": stored.os,
        "agent_version": stored.agent_version,
    }


def _traffic(now: dt.datetime) -> dict[str, Any]:
    """One point per minute of the window, ending with the current (partial) minute."""
    last = now.replace(second=0, microsecond=0)
    first = last - dt.timedelta(minutes=WINDOW_MINUTES - 1)
    minutes = {
        row.minute: row for row in TrafficMinute.objects.filter(minute__gte=first, minute__lte=last)
    }
    points = [minutes.get(first + dt.timedelta(minutes=i)) for i in range(WINDOW_MINUTES)]
    return {
        "start": first.timestamp(),
        "step": 60,
        "bytes_up": [p.bytes_up if p else 0 for p in points],
        "bytes_down": [p.bytes_down if p else 0 for p in points],
        "requests": [p.requests if p else 0 for p in points],
        "errors": [p.errors if p else 0 for p in points],
    }


def _errors(log: QuerySet[RequestLog]) -> list[dict[str, Any]]:
    rows = (
        log.exclude(result="ok")
        .values("result")
        .annotate(count=Count("id"))
        .order_by("-count", "result")
    )
    return [{"cause": row["result"], "count": row["count"]} for row in rows]


def _summarize_log(log: QuerySet[RequestLog]) -> dict[str, list[dict[str, Any]]]:
    return {
        "errors": _errors(log),
        "top_destinations": _top_destinations(log),
        "top_users": _top_users(log),
    }


_log_summary = CostlyQuery(_summarize_log)


def _top_destinations(log: QuerySet[RequestLog]) -> list[dict[str, Any]]:
    rows = (
        log.values("host", "port")
        .annotate(
            up=Sum("bytes_up"),
            down=Sum("bytes_down"),
            total=Sum(F("bytes_up") + F("bytes_down")),
            requests=Count("id"),
        )
        .order_by("-total", "-requests", "host", "port")[:TOP_COUNT]
    )
    return [
        {
            "host": row["host"],
            "port": row["port"],
            "bytes_up": row["up"],
            "bytes_down": row["down"],
            "requests": row["requests"],
        }
        for row in rows
    ]


def _top_users(log: QuerySet[RequestLog]) -> list[dict[str, Any]]:
    rows = (
        log.values("user_name")
        .annotate(
            up=Sum("bytes_up"),
            down=Sum("bytes_down"),
            total=Sum(F("bytes_up") + F("bytes_down")),
            requests=Count("id"),
            errors=Count("id", filter=~Q(result="ok")),
        )
        .order_by("-total", "-requests", "user_name")[:TOP_COUNT]
    )
    return [
        {
            "name": row["user_name"],
            "bytes_up": row["up"],
            "bytes_down": row["down"],
            "requests": row["requests"],
            "errors": row["errors"],
        }
        for row in rows
    ]

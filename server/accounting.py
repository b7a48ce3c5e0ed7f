"""Who carried and used how much: counters in memory, written in batches.

Every proxied connection and API fetch is a :class:`Flow`. The relay itself
only counts bytes in its links (two integer additions per chunk); once a
second :meth:`Accounting.tick` reads those counts, so long tunnels show up in
the live numbers as they run, not when they end. Every ``flush_interval``
seconds :meth:`Accounting.flush` writes what accumulated — request-log rows,
per-user monthly and per-agent daily usage, per-minute totals — in one
database transaction off the event loop. No request writes to the database.

Limits are checked when a flow is admitted: a user's open streams against
their limit, and their month's bytes (database + not yet flushed) against
their quota. A flow already running is not cut when the quota is crossed; the
next one is refused.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import operator
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection, models, transaction
from django.db.models import F

from server import metrics
from server.config import ServerConfig
from server.proxy_auth import ProxyIdentity
from tunnel import SocketLink

log = logging.getLogger(__name__)

MAX_PENDING_ROWS = 200_000
"""Request-log rows kept in memory while the database cannot be written."""

RATE_WINDOW = 5
"""Ticks (seconds) the live per-agent rates are averaged over."""


class Limited(Exception):
    """A user is over a limit: answered with 429 and ``code`` as the error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False, slots=True)
class Flow:
    """One proxied connection or API fetch, from arrival to end."""

    kind: str
    user_name: str
    host: str
    port: int
    started: float = field(default_factory=time.time)
    user_id: int | None = None
    agent_id: int | None = None
    agent_name: str = ""
    status: int | None = None
    link: SocketLink | None = None
    up: int = 0
    down: int = 0
    _seen: tuple[int, int] = (0, 0)
    _unread: tuple[int, int] = (0, 0)
    admitted: bool = False
    ended: bool = False

    def carried_by(self, agent_id: int, agent_name: str, link: SocketLink | None = None) -> None:
        """The agent (and the link whose bytes count) that serves this flow."""
        self.agent_id = agent_id
        self.agent_name = agent_name
        self.link = link

    def read_counts(self) -> tuple[int, int]:
        """Bytes up and down that are new since the last read."""
        new_up, new_down = self._unread
        self._unread = (0, 0)
        if self.link is not None:
            sent, received = self.link.sender.sent, self.link.received
            new_up += sent - self._seen[0]
            new_down += received - self._seen[1]
            self._seen = (sent, received)
        self.up += new_up
        self.down += new_down
        return new_up, new_down

    def add_bytes(self, up: int, down: int) -> None:
        """Count bytes that went through no link (counted at the next read)."""
        self._unread = (self._unread[0] + up, self._unread[1] + down)


@dataclass(slots=True)
class Usage:
    bytes_up: int = 0
    bytes_down: int = 0
    count: int = 0

    def add(self, up: int, down: int, count: int = 0) -> None:
        self.bytes_up += up
        self.bytes_down += down
        self.count += count


@dataclass(slots=True)
class Minute:
    bytes_up: int = 0
    bytes_down: int = 0
    requests: int = 0
    errors: int = 0


@dataclass
class Pending:
    """What the next flush writes."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    users: dict[tuple[int, dt.date], Usage] = field(default_factory=dict)
    agents: dict[tuple[int, dt.date], Usage] = field(default_factory=dict)
    minutes: dict[dt.datetime, Minute] = field(default_factory=dict)

    def merge(self, other: Pending) -> None:
        """Put back a batch that could not be written (nothing is lost)."""
        self.rows[:0] = other.rows
        del self.rows[: max(0, len(self.rows) - MAX_PENDING_ROWS)]
        for key, usage in other.users.items():
            self.users.setdefault(key, Usage()).add(usage.bytes_up, usage.bytes_down, usage.count)
        for key, usage in other.agents.items():
            self.agents.setdefault(key, Usage()).add(usage.bytes_up, usage.bytes_down, usage.count)
        for when, minute in other.minutes.items():
            mine = self.minutes.setdefault(when, Minute())
            mine.bytes_up += minute.bytes_up
            mine.bytes_down += minute.bytes_down
            mine.requests += minute.requests
            mine.errors += minute.errors


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


class UtcClock:
    """The current UTC minute, day and month, rebuilt only when a minute has passed.

    Counting one keep-alive request looks these up three times; building the
    datetimes each time was a tenth of the gateway's work per request.
    """

    def __init__(self) -> None:
        self._until = 0.0
        self.minute = dt.datetime.now(dt.UTC)
        self.day = self.month = self.minute.date()
        self.refresh()

    def refresh(self) -> None:
        now = time.time()
        if now >= self._until:
            self.minute = dt.datetime.fromtimestamp(now, dt.UTC).replace(second=0, microsecond=0)
            self._until = self.minute.timestamp() + 60
            self.day = self.minute.date()
            self.month = month_of(self.day)


class Accounting:
    """In-memory counters of one server process (see the module docstring)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.active: set[Flow] = set()
        self.open_by_user: collections.Counter[int] = collections.Counter()
        self.pending = Pending()
        self.agent_rates: dict[int, tuple[float, float]] = {}
        """Bytes per second (up, down) of each agent over the last few ticks."""
        self.total_rate: tuple[float, float] = (0.0, 0.0)
        self._rate_samples: collections.deque[dict[int, tuple[int, int]]] = collections.deque(
            maxlen=RATE_WINDOW
        )
        self._month_used: dict[int, int] = {}
        self._clock = UtcClock()
        self._month = self._clock.month
        self._last_prune = 0.0

    # ------------------------------------------------------------ flows

    async def admit(self, flow: Flow, user: ProxyIdentity) -> None:
        """Count ``flow`` as ``user``'s, or raise :class:`Limited` if over a limit."""
        flow.user_id = user.user_id
        flow.user_name = user.name
        if user.monthly_quota is not None:
            used = await self.month_used(user.user_id)
            if used >= user.monthly_quota:
                raise Limited(
                    "quota-exceeded",
                    f"user {user.name} has used {used} of {user.monthly_quota} bytes this month",
                )
        # Checked after the (possibly awaited) quota, so no flow slips in meanwhile.
        max_streams = self.config.user_max_streams if user.max_streams is None else user.max_streams
        if self.open_by_user[user.user_id] >= max_streams:
            raise Limited(
                "too-many-streams",
                f"user {user.name} already has {max_streams} connections open (their limit)",
            )
        flow.admitted = True
        self.open_by_user[user.user_id] += 1
        self.active.add(flow)

    def request(self, flow: Flow) -> None:
        """One more request on a flow (a keep-alive request reusing its stream)."""
        self._clock.refresh()
        self._minute().requests += 1
        user_id = flow.user_id
        if user_id is not None:
            self._user_usage(user_id).count += 1

    def end(self, flow: Flow, status: int | None, result: str) -> None:
        """The flow is over: count its last bytes and queue its request-log row."""
        if flow.ended:
            return
        flow.ended = True
        self._clock.refresh()
        self._count(flow)
        if flow.admitted:
            self.active.discard(flow)
            assert flow.user_id is not None
            self.open_by_user[flow.user_id] -= 1
            if self.open_by_user[flow.user_id] <= 0:
                del self.open_by_user[flow.user_id]
        now = time.time()
        minute = self._minute()
        minute.requests += 1
        if result != "ok":
            minute.errors += 1
        if flow.user_id is not None:
            self._user_usage(flow.user_id).count += 1
        if flow.agent_id is not None:
            self._agent_usage(flow.agent_id).count += 1
        metrics.REQUESTS.labels(flow.kind, result).inc()
        status = status if status is not None else flow.status
        self.pending.rows.append(
            {
                "time": dt.datetime.fromtimestamp(flow.started, dt.UTC),
                "kind": flow.kind,
                "user_id": flow.user_id,
                "user_name": flow.user_name[:64],
                "agent_id": flow.agent_id,
                "agent_name": flow.agent_name[:100],
                "host": flow.host[:255],
                "port": flow.port,
                "bytes_up": flow.up,
                "bytes_down": flow.down,
                "duration_ms": max(0, int((now - flow.started) * 1000)),
                "status": status,
                "result": result[:32],
            }
        )
        if len(self.pending.rows) > MAX_PENDING_ROWS:
            del self.pending.rows[0]

    async def month_used(self, user_id: int) -> int:
        """Bytes both ways this month: the database's count plus what is not yet flushed."""
        self._clock.refresh()
        self._roll_month()
        used = self._month_used.get(user_id)
        if used is None:
            used = await sync_to_async(_load_month_used)(user_id, self._month)
            used += self._unflushed(user_id)
            self._month_used[user_id] = used
        return used

    # ----------------------------------------------------------- ticking

    def tick(self) -> None:
        """Collect the bytes moved since the last tick (called every second)."""
        self._clock.refresh()
        sample: dict[int, tuple[int, int]] = {}
        for flow in self.active:
            moved_up, moved_down = self._count(flow)
            if flow.agent_id is not None and (moved_up or moved_down):
                old_up, old_down = sample.get(flow.agent_id, (0, 0))
                sample[flow.agent_id] = (old_up + moved_up, old_down + moved_down)
        self._rate_samples.append(sample)
        n = len(self._rate_samples)
        rates: dict[int, tuple[float, float]] = {}
        for one in self._rate_samples:
            for agent_id, (sent, received) in one.items():
                rate_up, rate_down = rates.get(agent_id, (0.0, 0.0))
                rates[agent_id] = (rate_up + sent / n, rate_down + received / n)
        self.agent_rates = rates
        self.total_rate = (
            sum(r[0] for r in rates.values()),
            sum(r[1] for r in rates.values()),
        )

    def _count(self, flow: Flow) -> tuple[int, int]:
        up, down = flow.read_counts()
        if not (up or down):
            return 0, 0
        metrics.BYTES_UP.inc(up)
        metrics.BYTES_DOWN.inc(down)
        minute = self._minute()
        minute.bytes_up += up
        minute.bytes_down += down
        if flow.user_id is not None:
            self._user_usage(flow.user_id).add(up, down)
            if flow.user_id in self._month_used:
                self._month_used[flow.user_id] += up + down
        if flow.agent_id is not None:
            self._agent_usage(flow.agent_id).add(up, down)
        return up, down

    # The lookups below read the clock as last refreshed, by the public method that called them.

    def _minute(self) -> Minute:
        minute = self.pending.minutes.get(self._clock.minute)
        if minute is None:
            minute = self.pending.minutes[self._clock.minute] = Minute()
        return minute

    def _user_usage(self, user_id: int) -> Usage:
        self._roll_month()
        key = (user_id, self._month)
        usage = self.pending.users.get(key)
        if usage is None:
            usage = self.pending.users[key] = Usage()
        return usage

    def _agent_usage(self, agent_id: int) -> Usage:
        key = (agent_id, self._clock.day)
        usage = self.pending.agents.get(key)
        if usage is None:
            usage = self.pending.agents[key] = Usage()
        return usage

    def _unflushed(self, user_id: int) -> int:
        usage = self.pending.users.get((user_id, self._month))
        return usage.bytes_up + usage.bytes_down if usage else 0

    def _roll_month(self) -> None:
        month = self._clock.month
        if month != self._month:
            self._month = month
            self._month_used.clear()

    # ----------------------------------------------------------- flushing

    async def flush(self) -> None:
        """Write what accumulated; on failure keep it for the next try."""
        batch, self.pending = self.pending, Pending()
        if (
            not (batch.rows or batch.users or batch.agents or batch.minutes)
            and not self._prune_due()
        ):
            return
        prune_before = None
        if self._prune_due():
            self._last_prune = time.monotonic()
            retention = dt.timedelta(days=self.config.log_retention_days)
            prune_before = dt.datetime.now(dt.UTC) - retention
        try:
            await sync_to_async(_write, thread_sensitive=False)(batch, prune_before)
        except Exception:
            log.exception("could not write %d request-log rows; will retry", len(batch.rows))
            batch.merge(self.pending)
            self.pending = batch

    def _prune_due(self) -> bool:
        return not self._last_prune or time.monotonic() - self._last_prune > 3600

    async def final_flush(self) -> None:
        """Count the open flows' last bytes and write everything (server shutdown)."""
        self._clock.refresh()
        for flow in self.active:
            self._count(flow)
        await self.flush()


def _load_month_used(user_id: int, month: dt.date) -> int:
    from server.fleet.models import UserMonthUsage

    usage = UserMonthUsage.objects.filter(user_id=user_id, month=month).first()
    return usage.total if usage else 0


def _write(batch: Pending, prune_before: dt.datetime | None) -> None:
    from server.fleet.models import (
        Agent,
        AgentDayUsage,
        ProxyUser,
        RequestLog,
        TrafficMinute,
        UserMonthUsage,
    )

    with transaction.atomic():
        # A user or agent deleted since its flow started keeps its name, not its link or usage.
        users = _existing(
            ProxyUser, {r["user_id"] for r in batch.rows} | {u for u, _ in batch.users}
        )
        agents = _existing(
            Agent, {r["agent_id"] for r in batch.rows} | {a for a, _ in batch.agents}
        )
        _insert_rows(RequestLog, batch.rows, users, agents)
        for (user_id, month), usage in batch.users.items():
            if user_id in users:
                _add_to(
                    UserMonthUsage,
                    {"user_id": user_id, "month": month},
                    bytes_up=usage.bytes_up,
                    bytes_down=usage.bytes_down,
                    requests=usage.count,
                )
        for (agent_id, day), usage in batch.agents.items():
            if agent_id in agents:
                _add_to(
                    AgentDayUsage,
                    {"agent_id": agent_id, "day": day},
                    bytes_up=usage.bytes_up,
                    bytes_down=usage.bytes_down,
                    streams=usage.count,
                )
        for when, minute in batch.minutes.items():
            _add_to(
                TrafficMinute,
                {"minute": when},
                bytes_up=minute.bytes_up,
                bytes_down=minute.bytes_down,
                requests=minute.requests,
                errors=minute.errors,
            )
    if prune_before is not None:
        deleted, _ = RequestLog.objects.filter(time__lt=prune_before).delete()
        TrafficMinute.objects.filter(minute__lt=prune_before).delete()
        if deleted:
            log.info("pruned %d request-log rows older than %s", deleted, prune_before)


def _insert_rows(
    model: type[models.Model], rows: list[dict[str, Any]], users: set[int], agents: set[int]
) -> None:
    """Insert request-log rows with one ``executemany``: no model instance per row.

    ``bulk_create`` builds an instance per row and runs every field's
    conversion on it; on the flush thread, which holds the GIL, that took CPU
    from the event loop (~11% of the server under connection load). The rows
    hold plain values already; only the time needs the backend's form.
    """
    if not rows:
        return
    names = list(rows[0])  # every row comes from Accounting.end: the same keys
    columns = {field.attname: str(field.column) for field in model._meta.concrete_fields}
    take = operator.itemgetter(*names)
    time_at, user_at, agent_at = (names.index(n) for n in ("time", "user_id", "agent_id"))
    ops = connection.ops
    quote = ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table),
        ", ".join(quote(columns[name]) for name in names),
        ", ".join(["%s"] * len(names)),
    )
    values = []
    for row in rows:
        value = list(take(row))
        value[time_at] = ops.adapt_datetimefield_value(value[time_at])
        if value[user_at] not in users:
            value[user_at] = None
        if value[agent_at] not in agents:
            value[agent_at] = None
        values.append(value)
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def _existing(model: type[models.Model], ids: set[int | None]) -> set[int]:
    """Which of ``ids`` still have a row (one query)."""
    return set(model._default_manager.filter(pk__in=ids - {None}).values_list("pk", flat=True))


def _add_to(model: type[models.Model], key: dict[str, Any], **amounts: int) -> None:
    """Add ``amounts`` to the counters of the row at ``key``, creating it at zero first."""
    model._default_manager.get_or_create(**key)
    model._default_manager.filter(**key).update(
        **{name: F(name) + amount for name, amount in amounts.items()}
    )

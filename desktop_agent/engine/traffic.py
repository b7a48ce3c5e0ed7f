"""What went through this PC: rates, totals per day and month, and where it went.

The owner's window onto their connection. The engine reports bytes as they
move (running connections once per sample, finished ones when they end) and
calls :meth:`TrafficMeter.sample` once per second; the tray reads the results
on its own timer. "Up" is what the PC sent to targets, "down" what it
received from them. Totals and recent destinations are kept in a JSON file so
a restart keeps today's count — and with it the daily cap.

No asyncio here: the calendar comes from the clock the engine was given, so
tests can move midnight and month ends at will.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRAFFIC_FILE = "traffic.json"
_FORMAT = 1


@dataclass(frozen=True)
class RateSample:
    """Mean rates over one sample period ending at unix ``time``, in bytes/s."""

    time: float
    up: float
    down: float


@dataclass(frozen=True)
class Totals:
    """Bytes carried this local day, this local month and since the meter's file began."""

    today_up: int
    today_down: int
    month_up: int
    month_down: int
    all_up: int
    all_down: int


@dataclass(frozen=True)
class Destination:
    """One ``host:port`` that connections went to (the host as the user asked for it)."""

    host: str
    port: int
    bytes_up: int
    bytes_down: int
    first_seen: float
    last_seen: float
    connections: int


@dataclass
class _Count:
    """A destination's running numbers (mutable twin of :class:`Destination`)."""

    bytes_up: int = 0
    bytes_down: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    connections: int = 0


class TrafficMeter:
    """Counts bytes per direction, per day, month and destination; bounded in memory.

    ``history`` is how many samples :meth:`rates` keeps (one per sample
    period); ``max_destinations`` how many destinations :meth:`recent_destinations`
    keeps, the least recently used dropped first. ``path`` (optional) is
    where :meth:`save` writes and :meth:`load` reads.
    """

    def __init__(
        self,
        clock: Callable[[], dt.datetime],
        path: Path | None = None,
        history: int = 600,
        max_destinations: int = 200,
    ) -> None:
        self._clock = clock
        self.path = path
        self.max_destinations = max_destinations
        self.connections_served = 0
        """Connections accepted and carried, since the meter's file began."""
        self._rates: collections.deque[RateSample] = collections.deque(maxlen=history)
        self._pending_up = 0
        self._pending_down = 0
        self._day = clock().date()
        self._today = [0, 0]
        self._month = [0, 0]
        self._all = [0, 0]
        self._destinations: collections.OrderedDict[tuple[str, int], _Count] = (
            collections.OrderedDict()
        )

    # ------------------------------------------------------------ counting

    def connection_opened(self, host: str, port: int) -> None:
        """A connection to ``host:port`` was accepted and is being carried."""
        count = self._touch(host, port)
        count.connections += 1
        self.connections_served += 1

    def add(self, host: str, port: int, up: int, down: int) -> None:
        """``up`` bytes went to ``host:port`` and ``down`` came back since the last report."""
        if not up and not down:
            return
        self._roll()
        count = self._touch(host, port)
        count.bytes_up += up
        count.bytes_down += down
        self._pending_up += up
        self._pending_down += down
        for totals in (self._today, self._month, self._all):
            totals[0] += up
            totals[1] += down

    def sample(self, elapsed: float) -> None:
        """Close a period of ``elapsed`` seconds: its bytes become one :class:`RateSample`."""
        seconds = max(elapsed, 1e-3)
        now = self._clock().timestamp()
        up, down = self._pending_up / seconds, self._pending_down / seconds
        self._rates.append(RateSample(now, up, down))
        self._pending_up = self._pending_down = 0

    # ------------------------------------------------------------- reading

    def rates(self) -> list[RateSample]:
        """The last samples, oldest first."""
        return list(self._rates)

    def totals(self) -> Totals:
        """Bytes today, this month and overall, by the clock's local calendar."""
        self._roll()
        return Totals(*self._today, *self._month, *self._all)

    def today_bytes(self) -> int:
        """Bytes both ways since local midnight: what the daily cap counts."""
        self._roll()
        return self._today[0] + self._today[1]

    def recent_destinations(self) -> list[Destination]:
        """Destinations, the most recently active first."""
        return [
            Destination(host, port, **asdict(count))
            for (host, port), count in reversed(self._destinations.items())
        ]

    # --------------------------------------------------------- persistence

    def save(self) -> None:
        """Write totals and destinations to ``path`` atomically, readable by the owner only."""
        if self.path is None:
            return
        self._roll()
        data = {
            "format": _FORMAT,
            "day": self._day.isoformat(),
            "today": self._today,
            "month": self._month,
            "all": self._all,
            "connections_served": self.connections_served,
            "destinations": [
                {"host": host, "port": port, **asdict(count)}
                for (host, port), count in self._destinations.items()
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".traffic-")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> None:
        """Read what :meth:`save` wrote; a missing or unreadable file leaves the meter empty.

        Counts of an earlier day or month are carried into the all-time total only.
        """
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text())
            day = dt.date.fromisoformat(data["day"])
            today, month, overall = (_pair(data[key]) for key in ("today", "month", "all"))
            served = int(data.get("connections_served", 0))
            destinations = [_destination(item) for item in data.get("destinations", [])]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable traffic file %s: %s", self.path, exc)
            return
        self._day, self._today, self._month, self._all = day, today, month, overall
        self.connections_served = max(served, 0)
        self._destinations.clear()
        for host, port, count in destinations[-self.max_destinations :]:
            self._destinations[(host, port)] = count
        self._roll()

    # ------------------------------------------------------------- internals

    def _touch(self, host: str, port: int) -> _Count:
        now = self._clock().timestamp()
        key = (host, port)
        count = self._destinations.get(key)
        if count is None:
            count = self._destinations[key] = _Count(first_seen=now)
            while len(self._destinations) > self.max_destinations:
                self._destinations.popitem(last=False)
        else:
            self._destinations.move_to_end(key)
        count.last_seen = now
        return count

    def _roll(self) -> None:
        """Start a new day (and month) when the clock's local date moved on."""
        today = self._clock().date()
        if today == self._day:
            return
        if (today.year, today.month) != (self._day.year, self._day.month):
            self._month = [0, 0]
        self._today = [0, 0]
        self._day = today


def _pair(value: Any) -> list[int]:
    up, down = value
    if not (isinstance(up, int) and isinstance(down, int)) or up < 0 or down < 0:
        raise ValueError(f"not a pair of byte counts: {value!r}")
    return [up, down]


def _destination(item: Any) -> tuple[str, int, _Count]:
    count = _Count(
        bytes_up=int(item["bytes_up"]),
        bytes_down=int(item["bytes_down"]),
        first_seen=float(item["first_seen"]),
        last_seen=float(item["last_seen"]),
        connections=int(item["connections"]),
    )
    return str(item["host"]), int(item["port"]), count

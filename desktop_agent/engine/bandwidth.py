"""The owner's bandwidth limit: one token bucket per direction, shared by every connection.

Bytes are paid for after they moved, so the bucket may run into debt (one
socket read, one window of stream data); while it is in debt the direction's
:class:`Throttle` is *blocked* and every link stops taking more: target
sockets are not read (downloads) and the server gets no credit back (uploads),
so nothing piles up beyond the stream windows that already bound memory.
Over any stretch longer than the burst, the rate is the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class TokenBucket:
    """``rate`` bytes/s refill a bucket of ``capacity`` bytes; taking may leave a debt."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self._stamp = now

    def take(self, size: int, now: float) -> float:
        """Pay ``size`` bytes; returns the seconds until the debt is paid off (0: no debt)."""
        self._refill(now)
        self.tokens -= size
        return self.debt_time(now)

    def debt_time(self, now: float) -> float:
        """Seconds until the tokens are back at zero (0 when there is no debt)."""
        self._refill(now)
        return -self.tokens / self.rate if self.tokens < 0 else 0.0

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now


class Valve(Protocol):
    """Something that stops and restarts its flow when a throttle blocks or opens."""

    def throttle_changed(self) -> None: ...


class Throttle:
    """One direction of the limit, on the running loop; ``blocked`` while its bucket is in debt.

    ``burst`` is in seconds of the rate: how much may pass at once after a
    quiet moment. With ``rate`` None everything passes.
    """

    def __init__(
        self,
        rate: float | None,
        burst: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.blocked = False
        self.valves: set[Valve] = set()
        self._time = monotonic
        self._bucket: TokenBucket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.set_rate(rate)

    @property
    def rate(self) -> float | None:
        """Bytes per second, None when unlimited."""
        return self._bucket.rate if self._bucket is not None else None

    @property
    def quantum(self) -> int | None:
        """Largest piece worth passing at once (the burst), None when unlimited.

        Data that can wait in pieces (uploads) is cut to this size, so the debt
        after any one piece, and with it the error of the rate, stays one burst.
        """
        return int(self._bucket.capacity) if self._bucket is not None else None

    def set_rate(self, rate: float | None) -> None:
        """Change the limit at once (None: unlimited); a debt under the old rate is forgiven."""
        if rate == self.rate:
            return
        self._bucket = None
        if rate is not None:
            self._bucket = TokenBucket(rate, max(1.0, rate * self.burst), self._time())
        self._open()

    def spend(self, size: int) -> None:
        """``size`` bytes went through; block every valve if that put the bucket in debt."""
        if self._bucket is None:
            return
        wait = self._bucket.take(size, self._time())
        if wait > 0 and not self.blocked:
            self.blocked = True
            self._timer = asyncio.get_running_loop().call_later(wait, self._reopen)
            self._tell()

    def close(self) -> None:
        """Forget every valve and timer (the engine stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.valves.clear()
        self.blocked = False

    def _reopen(self) -> None:
        self._timer = None
        wait = self._bucket.debt_time(self._time()) if self._bucket is not None else 0.0
        if wait > 0:  # more was spent meanwhile (a read already under way)
            self._timer = asyncio.get_running_loop().call_later(wait, self._reopen)
            return
        self._open()

    def _open(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.blocked:
            self.blocked = False
            self._tell()

    def _tell(self) -> None:
        for valve in list(self.valves):
            valve.throttle_changed()


class Bandwidth:
    """The limit both ways: ``up`` (stream data written to targets), ``down`` (read from them)."""

    def __init__(self, rate: float | None, burst: float) -> None:
        self.up = Throttle(rate, burst)
        self.down = Throttle(rate, burst)

    def set_limit(self, rate: float | None) -> None:
        """Bytes per second in each direction (None: unlimited), from now on."""
        self.up.set_rate(rate)
        self.down.set_rate(rate)

    def add(self, valve: Valve) -> None:
        """A link to stop and restart as either direction blocks and opens."""
        self.up.valves.add(valve)
        self.down.valves.add(valve)

    def discard(self, valve: Valve) -> None:
        """Forget a link that ended."""
        self.up.valves.discard(valve)
        self.down.valves.discard(valve)

    def close(self) -> None:
        """Cancel pending timers (the engine stops)."""
        self.up.close()
        self.down.close()

"""A timeout that is re-armed for every request without scheduling a new timer each time.

A keep-alive proxy connection arms two timeouts per request (the next head's
deadline, the response's first byte) and cancels both moments later. With
``loop.call_later`` that was two timer handles pushed on the loop's heap and
two cancelled per request, about a twentieth of the gateway's work. Here
``arm`` only records when the timeout expires; the one scheduled handle, when
it comes due early because the timeout was re-armed since, schedules itself
again for the recorded time. A connection serving thousands of requests thus
schedules a handful of handles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class LazyTimer:
    """Calls ``callback`` once ``delay`` seconds pass after the last ``arm``, unless cancelled."""

    __slots__ = ("_callback", "_delay", "_expires", "_handle", "_loop", "_scheduled")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._delay = delay
        self._callback = callback
        self._expires: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._scheduled = 0.0

    @property
    def armed(self) -> bool:
        return self._expires is not None

    def arm(self) -> None:
        """Start (or restart) the countdown."""
        self._expires = self._loop.time() + self._delay  # never earlier than a scheduled handle
        if self._handle is None:
            self._schedule(self._expires)

    def cancel(self) -> None:
        """Stop the countdown; a handle still scheduled finds nothing to do when it comes due."""
        self._expires = None

    def close(self) -> None:
        """Stop for good and drop the scheduled handle (the connection is gone)."""
        self._expires = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, when: float) -> None:
        self._scheduled = when
        self._handle = self._loop.call_at(when, self._due)

    def _due(self) -> None:
        self._handle = None
        if self._expires is None:
            return
        if self._expires > self._scheduled:  # re-armed since this handle was scheduled
            self._schedule(self._expires)
            return
        self._expires = None
        self._callback()

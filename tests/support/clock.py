"""A local clock that tests move by hand: schedules, daily caps and day changes on demand."""

from __future__ import annotations

import datetime as dt


class Clock:
    """Returns ``now`` (an aware datetime) until the test advances it."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

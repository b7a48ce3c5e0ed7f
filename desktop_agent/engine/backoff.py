"""Reconnect delays: exponential with jitter, so a restarted server is not hit by
every agent in the same instant."""

from __future__ import annotations

import random


class Backoff:
    """Delay n is uniform in [cap/2, cap] with cap = min(maximum, initial * 2**n)."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        cap: float = min(self.maximum, self.initial * float(2 ** min(self.failures, 32)))
        self.failures += 1
        return cap / 2 + self._rng.uniform(0, cap / 2)

    def reset(self) -> None:
        self.failures = 0

"""The bandwidth limit: a token bucket per direction and the throttle that blocks every link."""

from __future__ import annotations

import asyncio

import pytest

from desktop_agent.engine.bandwidth import Bandwidth, Throttle, TokenBucket


def test_a_full_bucket_lets_its_capacity_through_at_once() -> None:
    bucket = TokenBucket(rate=1000, capacity=250, now=0.0)

    assert bucket.take(250, now=0.0) == 0.0
    assert bucket.take(1, now=0.0) == pytest.approx(0.001)


def test_a_debt_takes_its_size_over_the_rate_to_pay_off() -> None:
    bucket = TokenBucket(rate=1000, capacity=100, now=0.0)

    assert bucket.take(600, now=0.0) == pytest.approx(0.5)
    assert bucket.debt_time(now=0.25) == pytest.approx(0.25)
    assert bucket.debt_time(now=0.5) == 0.0


def test_a_quiet_bucket_refills_only_up_to_its_capacity() -> None:
    bucket = TokenBucket(rate=1000, capacity=100, now=0.0)
    bucket.take(100, now=0.0)

    assert bucket.take(100, now=60.0) == 0.0  # an hour of quiet is not an hour of credit
    assert bucket.take(50, now=60.0) == pytest.approx(0.05)


@pytest.mark.parametrize(("rate", "capacity"), [(0, 10), (10, 0), (-1, 10)])
def test_a_bucket_needs_a_positive_rate_and_capacity(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, capacity, now=0.0)


class Valve:
    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle
        self.seen: list[bool] = []

    def throttle_changed(self) -> None:
        self.seen.append(self.throttle.blocked)


async def test_a_throttle_blocks_every_valve_until_the_debt_is_paid() -> None:
    throttle = Throttle(rate=100_000, burst=0.1)
    first, second = Valve(throttle), Valve(throttle)
    throttle.valves |= {first, second}
    loop = asyncio.get_running_loop()

    throttle.spend(10_000)  # within the burst
    assert not throttle.blocked
    started = loop.time()
    throttle.spend(30_000)  # 20 KB of debt: 0.2 s at 100 KB/s
    assert throttle.blocked
    while throttle.blocked:
        await asyncio.sleep(0.01)

    assert 0.15 < loop.time() - started < 0.4
    assert first.seen == second.seen == [True, False]


async def test_spending_while_blocked_extends_the_block() -> None:
    throttle = Throttle(rate=100_000, burst=0.01)
    loop = asyncio.get_running_loop()
    started = loop.time()

    throttle.spend(11_000)  # 0.1 s of debt
    throttle.spend(20_000)  # a read already under way: 0.2 s more
    while throttle.blocked:
        await asyncio.sleep(0.01)

    assert 0.25 < loop.time() - started < 0.5


async def test_lifting_the_limit_opens_a_blocked_throttle_at_once() -> None:
    throttle = Throttle(rate=1000, burst=0.1)
    valve = Valve(throttle)
    throttle.valves.add(valve)
    throttle.spend(10_000)  # ten seconds of debt
    assert throttle.blocked

    throttle.set_rate(None)

    assert not throttle.blocked
    assert valve.seen == [True, False]
    throttle.spend(10**9)
    assert not throttle.blocked


async def test_an_unlimited_throttle_never_blocks() -> None:
    throttle = Throttle(rate=None, burst=0.25)

    throttle.spend(10**12)

    assert not throttle.blocked
    assert throttle.rate is None


async def test_bandwidth_applies_one_limit_to_both_directions() -> None:
    bandwidth = Bandwidth(rate=None, burst=0.25)
    bandwidth.set_limit(500_000)

    assert bandwidth.up.rate == bandwidth.down.rate == 500_000
    bandwidth.down.spend(10**6)
    assert bandwidth.down.blocked and not bandwidth.up.blocked
    bandwidth.down.close()

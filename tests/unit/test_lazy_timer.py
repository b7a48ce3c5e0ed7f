"""The gateway's re-armable timeout: fires once after the last arm, never after a cancel."""

from __future__ import annotations

import asyncio

from server.lazy_timer import LazyTimer

DELAY = 0.05


def scheduled(loop: asyncio.AbstractEventLoop) -> int:
    """Timer handles the loop will still run (asyncio drops cancelled ones lazily)."""
    return sum(not handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]


async def test_it_fires_once_the_delay_after_it_was_armed() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = LazyTimer(loop, DELAY, lambda: fired.append(loop.time()))
    armed_at = loop.time()
    timer.arm()
    await asyncio.sleep(DELAY * 3)
    assert len(fired) == 1
    assert fired[0] - armed_at >= DELAY
    assert not timer.armed


async def test_re_arming_moves_the_deadline_with_a_single_scheduled_handle() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = LazyTimer(loop, DELAY, lambda: fired.append(loop.time()))
    before = scheduled(loop)
    for _ in range(5):  # a keep-alive connection arming per request
        timer.arm()
        timer.cancel()
        timer.arm()
        assert scheduled(loop) == before + 1
        await asyncio.sleep(DELAY / 2)
    last_armed = loop.time() - DELAY / 2
    assert fired == []  # each re-arm pushed the deadline on
    await asyncio.sleep(DELAY * 3)
    assert len(fired) == 1
    assert fired[0] - last_armed >= DELAY * 0.9


async def test_a_cancelled_timer_never_fires_and_close_drops_its_handle() -> None:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    cancelled = LazyTimer(loop, DELAY, lambda: fired.append("cancelled"))
    cancelled.arm()
    cancelled.cancel()
    closed = LazyTimer(loop, DELAY, lambda: fired.append("closed"))
    before = scheduled(loop)
    closed.arm()
    closed.close()
    assert scheduled(loop) == before
    await asyncio.sleep(DELAY * 3)
    assert fired == []

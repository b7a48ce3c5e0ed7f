"""The Qt binding under the app's event loop keeps Python's books straight.

PySide6 6.12.0's ``QObject.killTimer()`` dropped a reference to ``None`` on
every call. qasync kills a timer for every asyncio callback, so ``None``'s
count ran down by one per callback until the interpreter aborted ("deallocating
None") — minutes into real traffic. ``pyproject.toml`` excludes that version;
this test fails on any binding that has the bug again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

CALLBACKS = 20_000
"""More asyncio callbacks than ``None`` has references at start-up (about 5,000)."""


def test_asyncio_callbacks_on_the_qt_loop_leave_nones_count_alone(
    loop: Any, run: Callable[..., Any]
) -> None:
    async def many_callbacks() -> int:
        before = sys.getrefcount(None)
        for _ in range(CALLBACKS):
            await asyncio.sleep(0)
        return sys.getrefcount(None) - before

    assert abs(run(many_callbacks(), timeout=60)) < 1000

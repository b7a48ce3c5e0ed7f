"""Choosing the event loop: uvloop when installed and wanted, a clear error otherwise."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest

from tunnel import event_loop


@pytest.fixture(autouse=True)
def default_policy() -> Iterator[None]:
    yield
    asyncio.set_event_loop_policy(None)


def test_auto_and_uvloop_choose_uvloop_when_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvloop

    for choice in ("", "auto", "UVLOOP"):
        monkeypatch.setenv(event_loop.EVENT_LOOP_ENV, choice)
        assert event_loop.install() == "uvloop"
        assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)


def test_asyncio_keeps_asyncio_s_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.EVENT_LOOP_ENV, "asyncio")
    assert event_loop.install() == "asyncio"
    assert type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy


def test_without_uvloop_auto_falls_back_and_uvloop_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on Windows: import fails
    monkeypatch.setenv(event_loop.EVENT_LOOP_ENV, "auto")
    assert event_loop.install() == "asyncio"
    monkeypatch.setenv(event_loop.EVENT_LOOP_ENV, "uvloop")
    with pytest.raises(ValueError, match="uvloop is not installed"):
        event_loop.install()

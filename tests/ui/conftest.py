"""The tray app under pytest-qt, offscreen, with a real engine against a real server.

The app's asyncio code runs on a qasync loop marked as already running, so
every Qt event pytest-qt processes (``qtbot.waitUntil``, clicks) also runs
the engine's callbacks — exactly as in the app, where one thread does both.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import qasync
from PySide6.QtWidgets import QApplication

from desktop_agent.engine.client import Status
from desktop_agent.ui.app import TrayApp, settings_store
from desktop_agent.ui.autostart import Autostart
from desktop_agent.ui.controller import AgentController
from desktop_agent.ui.credentials import FileStore
from desktop_agent.ui.settings import AgentSettings
from tests.support.admin_browser import Admin
from tests.support.processes import ServerProcess
from tests.support.target import TargetProcess

T = TypeVar("T")
USER = "ui-user"
PASSWORD = "ui-password"
ADMIN, ADMIN_PASSWORD = "ui-admin", "ui-admin-password"
NOWHERE = "ws://127.0.0.1:9/ws/agent"
"""A server address where nothing listens (the discard port): the engine keeps retrying."""
AGENT_OPTIONS = {
    "allowed_networks": ("127.0.0.0/8",),
    "source_address": "127.0.0.2",
    "connect_timeout": 2.0,
}


@pytest.fixture(scope="session")
def qasync_loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """One qasync loop for the session, never stopped in between: stopping it calls
    ``QApplication.exit()``, after which Qt's nested event loops (pytest-qt's waits)
    return at once."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.events._set_running_loop(None)
    yield loop
    asyncio.events._set_running_loop(loop)
    loop.stop()
    asyncio.events._set_running_loop(None)
    loop.close()  # joins the executor threads behind asyncio.to_thread


@pytest.fixture
def loop(qasync_loop: qasync.QEventLoop) -> Iterator[qasync.QEventLoop]:
    """The qasync loop as this test's running loop (other tests keep their own asyncio)."""
    asyncio.events._set_running_loop(qasync_loop)
    asyncio.set_event_loop(qasync_loop)
    yield qasync_loop
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture
def run(loop: qasync.QEventLoop, qtbot: Any) -> Callable[..., Any]:
    """``run(coroutine, timeout=10)``: drive Qt and asyncio until it is done; its result."""

    def run_until_done(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        task = loop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return task.result()

    return run_until_done


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("ui-server"))
    process.cli("proxyuser", USER, "--password", PASSWORD)
    process.create_admin(ADMIN, ADMIN_PASSWORD)
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[Admin]:
    """The server's admin page, logged in."""
    with requests.Session() as http:
        yield Admin(server, http, ADMIN, ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    return server.enrollment_key("ui tests")


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess(host="127.0.0.3") as process:
        yield process


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The owner's config folder, and a home of their own for the autostart file."""
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))  # no all-users entry
    (tmp_path / "config").mkdir()
    return tmp_path


def make_controller(
    home: Path, settings: AgentSettings, clock: Callable[[], Any] | None = None
) -> AgentController:
    config_dir = home / "config"
    store = settings_store(config_dir)
    settings.save(store)
    return AgentController(
        settings, store, config_dir, FileStore(config_dir), dict(AGENT_OPTIONS), clock
    )


def make_app(controller: AgentController, home: Path, use_tray: bool = True) -> TrayApp:
    autostart = Autostart(["exitpool-agent"], system="Linux", home=home)
    return TrayApp(controller, autostart, home / "agent.log", use_tray=use_tray)


@pytest.fixture
def stop_all(run: Callable[..., Any]) -> Iterator[list[AgentController]]:
    """Controllers appended here are stopped (engine closed cleanly) after the test."""
    controllers: list[AgentController] = []
    yield controllers
    for controller in controllers:
        run(controller.stop(), timeout=15)


def online(controller: AgentController) -> bool:
    return controller.engine is not None and controller.engine.status is Status.ONLINE


@dataclass
class Live:
    """A test's world: the real server and target, the app's loop, and what to clean up."""

    home: Path
    server: ServerProcess
    key: str
    target: TargetProcess
    qtbot: Any
    run: Callable[..., Any]
    stop_all: list[AgentController]

    def start_app(self, name: str, use_tray: bool = True) -> TrayApp:
        """The tray app, enrolled as ``name`` and online."""
        settings = AgentSettings(server_url=self.server.ws_url, enrollment_key=self.key, name=name)
        controller = make_controller(self.home, settings)
        self.stop_all.append(controller)
        app = make_app(controller, self.home, use_tray)
        app.start()
        self.qtbot.waitUntil(lambda: online(controller), timeout=20_000)
        return app

    def fetch(self, agent: str, path: str) -> requests.Response:
        """GET the target's ``path`` through the proxy pinned to ``agent``. It runs in a
        thread, so the engine keeps serving on this one meanwhile."""
        proxy = self.server.proxy_url(f"{USER}-agent-{agent}", PASSWORD)
        url = f"{self.target.url}{path}"
        return self.run(asyncio.to_thread(requests.get, url, proxies={"http": proxy}, timeout=10))

    def wait_for_answer(self, agent: str, expected: tuple[int, str]) -> None:
        """Ask until the proxy answers ``expected`` (status, X-Exitpool-Error) for a request
        pinned to ``agent``; at most 50 tries, 0.1 s apart."""
        seen = None
        for _ in range(50):
            answer = self.fetch(agent, "/ip")
            seen = (answer.status_code, answer.headers.get("X-Exitpool-Error", ""))
            if seen == expected:
                return
            self.qtbot.wait(100)
        raise AssertionError(f"the proxy kept answering {seen}, not {expected}")


@pytest.fixture
def live(
    home: Path,
    server: ServerProcess,
    key: str,
    target: TargetProcess,
    qtbot: Any,
    loop: qasync.QEventLoop,
    run: Callable[..., Any],
    stop_all: list[AgentController],
) -> Live:
    return Live(home, server, key, target, qtbot, run, stop_all)

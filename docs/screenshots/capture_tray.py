"""Take the tray app's screenshots in this folder: ``make screenshots``.

Runs under Xvfb (the Makefile wraps it in ``xvfb-run``) with ``trayer`` as
the system tray. A real server, a real target on 127.0.0.3 and the real tray
app (its engine connected to that server) run while the pictures are taken;
downloads through the proxy go on meanwhile, so the chart and the numbers
are live. A fresh agent has no past, so its traffic file is written first
with earlier totals and a handful of destinations with ``example.*`` names
(made-up, consistent byte counts): the list looks like a day of real use.
Everything else is real.

Writes ``tray-menu.png``, ``tray-traffic.png``, ``tray-settings.png``,
``tray-settings-limits.png``, ``tray-welcome.png`` and ``tray-no-tray.png``.
Not part of ``make test``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import qasync  # noqa: E402
import requests  # noqa: E402
from PySide6.QtCore import QPoint, QRect  # noqa: E402
from PySide6.QtGui import QGuiApplication, QPixmap  # noqa: E402
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget  # noqa: E402

from desktop_agent.engine.client import Status  # noqa: E402
from desktop_agent.engine.traffic import TrafficMeter  # noqa: E402
from desktop_agent.ui.app import TrayApp, settings_store  # noqa: E402
from desktop_agent.ui.autostart import Autostart  # noqa: E402
from desktop_agent.ui.controller import AgentController  # noqa: E402
from desktop_agent.ui.credentials import FileStore  # noqa: E402
from desktop_agent.ui.icons import taskbar_theme, tray_icon  # noqa: E402
from desktop_agent.ui.settings import AgentSettings  # noqa: E402
from desktop_agent.ui.status import status_view  # noqa: E402
from desktop_agent.ui.status_window import StatusWindow  # noqa: E402
from desktop_agent.ui.welcome import WelcomeDialog  # noqa: E402
from tests.support.processes import ServerProcess, wait_for  # noqa: E402
from tests.support.target import TargetProcess  # noqa: E402

USER, PASSWORD = "screenshots", "screenshot-pw"
TRAYER_OPTIONS = (
    *("--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "96"),
    *("--height", "26", "--transparent", "false", "--tint", "0x2b2b2b", "--SetDockType", "true"),
)
"""A dark panel at the top right: the tray the icons are photographed in."""
AGENT = "front-desk-pc"
PAST = {  # host:port -> (minutes ago, connections, bytes sent, bytes received)
    "api.example.com:443": (3, 412, 3_100_000, 96_000_000),
    "shop.example.org:443": (9, 188, 1_400_000, 61_000_000),
    "cdn.example.net:443": (26, 96, 800_000, 142_000_000),
    "www.example.com:80": (48, 51, 300_000, 12_500_000),
    "search.example.org:443": (75, 37, 240_000, 8_800_000),
    "status.example.net:443": (130, 12, 40_000, 600_000),
}
LIVE_SECONDS = 150
"""How long real downloads run before the pictures: the chart's right quarter."""


def save(pixmap: QPixmap, name: str) -> None:
    path = HERE / name
    pixmap.save(str(path))
    print(f"wrote {path.relative_to(ROOT)} ({pixmap.width()}x{pixmap.height()})")


def seed_history(config_dir: Path) -> None:
    """Earlier days and the destinations of this morning, in the agent's own traffic file."""
    now = dt.datetime.now().astimezone()
    moment = [now - dt.timedelta(days=40)]
    meter = TrafficMeter(lambda: moment[0], config_dir / "traffic.json")
    meter.add("archive.example.com", 443, 90_000_000, 2_600_000_000)  # last month
    moment[0] = now.replace(day=1) if now.day > 1 else now
    meter.add("archive.example.com", 443, 40_000_000, 1_100_000_000)  # earlier this month
    for destination, (minutes, connections, up, down) in reversed(PAST.items()):
        host, port = destination.rsplit(":", 1)
        moment[0] = now - dt.timedelta(minutes=minutes)
        for _ in range(connections):
            meter.connection_opened(host, int(port))
        meter.add(host, int(port), up, down)
    meter.save()


def downloads(server: ServerProcess, target: TargetProcess, stop: threading.Event) -> None:
    """Downloads of varying size through the agent until ``stop``: a lively chart."""
    proxy = server.proxy_url(f"{USER}-agent-{AGENT}", PASSWORD)
    session = requests.Session()
    session.proxies = {"http": proxy}
    sizes = [400_000, 1_500_000, 3_000_000, 800_000, 5_000_000, 2_000_000]
    i = 0
    while not stop.is_set() and i < 10_000:
        try:
            session.get(f"{target.url}/bytes/{sizes[i % len(sizes)]}", timeout=10)
        except requests.RequestException:
            time.sleep(0.2)
        i += 1
        time.sleep(0.15)


async def settle(seconds: float) -> None:
    """Let Qt and the engine run for a while (the loop is Qt's own)."""
    await asyncio.sleep(seconds)


async def grab(widget: QWidget) -> QPixmap:
    """The widget at its natural size. Qt lays it out on the loop (never processEvents()
    inside a coroutine: that would run other asyncio tasks inside this one)."""
    widget.adjustSize()
    await settle(0.3)
    return widget.grab()


async def take(app: TrayApp, home: Path) -> None:
    controller = app.controller
    app.start()
    for _ in range(300):
        if controller.engine is not None and controller.engine.status is Status.ONLINE:
            break
        await settle(0.1)
    engine = controller.engine
    assert engine is not None and engine.status is Status.ONLINE, "the agent did not connect"
    await settle(LIVE_SECONDS)

    assert app.tray is not None
    app.refresh()
    area = app.tray.icon.geometry()
    menu = app.actions.menu
    menu.popup(QPoint(area.right() - menu.sizeHint().width(), area.bottom() + 4))
    await settle(1)
    screen = QGuiApplication.primaryScreen()
    width = max(menu.width(), area.width()) + 40
    shot = QRect(area.right() - width + 20, 0, width, area.bottom() + menu.height() + 16)
    save(screen.grabWindow(0, shot.x(), shot.y(), shot.width(), shot.height()), "tray-menu.png")
    menu.hide()

    app.show_traffic()
    await settle(2)
    assert app.traffic_window is not None
    app.traffic_window.resize(760, 680)
    await settle(1.5)
    save(app.traffic_window.grab(), "tray-traffic.png")
    app.traffic_window.hide()

    app.show_settings()
    dialog = app.settings_dialog
    assert dialog is not None
    dialog.test_connection()
    await settle(2)
    save(await grab(dialog), "tray-settings.png")
    dialog.tabs.setCurrentIndex(1)
    await settle(0.3)
    save(await grab(dialog), "tray-settings-limits.png")
    dialog.reject()

    welcome = WelcomeDialog(AgentSettings(server_url="https://exitpool.example.com"))
    welcome.name.setText("FRONT-DESK-PC")
    welcome.enrollment_key.setText("epk_example")
    welcome.show()
    await settle(0.5)
    save(await grab(welcome), "tray-welcome.png")
    welcome.close()

    window = StatusWindow(app.actions)
    window.show()
    view = status_view(controller.engine, time.time())
    window.show_view(view, tray_icon(view.state, taskbar_theme(controller.settings.icon_theme)))
    await settle(0.5)
    save(await grab(window), "tray-no-tray.png")
    window.hide()
    await controller.stop()


def main() -> int:
    if not os.environ.get("DISPLAY"):
        sys.exit("run under xvfb-run (make screenshots does)")
    tray = subprocess.Popen(["trayer", *TRAYER_OPTIONS])
    home = Path(tempfile.mkdtemp(prefix="exitpool-shots-"))
    server = ServerProcess(home)
    stop = threading.Event()
    try:
        server.cli("proxyuser", USER, "--password", PASSWORD)
        server.start()
        key = server.enrollment_key("screenshots")
        qapp = QApplication(sys.argv[:1])
        qapp.setQuitOnLastWindowClosed(False)
        wait_for(QSystemTrayIcon.isSystemTrayAvailable, 10, "trayer to provide a tray")
        config_dir = home / "agent"
        config_dir.mkdir()
        settings = AgentSettings(
            server_url=server.ws_url,
            enrollment_key=key,
            name=AGENT,
            daily_cap_mb=2000,
            bandwidth_kbs=2048,
            max_connections=64,
            blocked=["ads.example.net", "203.0.113.0/24"],
            icon_theme="dark",
        )
        store = settings_store(config_dir)
        settings.save(store)
        seed_history(config_dir)
        controller = AgentController(
            settings,
            store,
            config_dir,
            FileStore(config_dir),
            {"allowed_networks": ("127.0.0.0/8",), "source_address": "127.0.0.2"},
        )
        with TargetProcess(host="127.0.0.3") as target:
            loader = threading.Thread(target=downloads, args=(server, target, stop))
            loader.start()
            loop = qasync.QEventLoop(qapp)
            asyncio.set_event_loop(loop)
            app = TrayApp(controller, Autostart(["exitpool-agent"], home=home), home / "agent.log")
            with loop:
                loop.run_until_complete(take(app, home))
            stop.set()
            loader.join(15)
            asyncio.set_event_loop(None)
            del app, controller, loop
            gc.collect()  # every Qt object goes before QApplication does
            qapp.shutdown()
    finally:
        stop.set()
        server.terminate()
        tray.terminate()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

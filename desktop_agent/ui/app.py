"""The tray app: ``exitpool-agent`` without ``--headless``.

:class:`TrayApp` wires the parts together: the controller (engine), the
shared actions, the tray icon or — on a desktop without a tray — the status
window, the windows opened from the menu, notifications, the network
watcher and the single-instance socket. :func:`run_app` builds it on a
qasync loop, so the engine's asyncio code and Qt share one thread.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import signal
import sys
import time
from pathlib import Path

import qasync
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtNetwork import QNetworkInformation
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from desktop_agent.engine.config import default_config_dir
from desktop_agent.engine.preconfig import PreconfigError, locate
from desktop_agent.ui.about import AboutDialog
from desktop_agent.ui.actions import AgentActions
from desktop_agent.ui.autostart import Autostart, agent_command
from desktop_agent.ui.controller import AgentController
from desktop_agent.ui.credentials import open_store
from desktop_agent.ui.icons import app_icon, taskbar_theme, tray_icon
from desktop_agent.ui.logs import default_log_dir, setup_logging
from desktop_agent.ui.notices import Notifier
from desktop_agent.ui.settings import AgentSettings
from desktop_agent.ui.settings_dialog import SettingsDialog
from desktop_agent.ui.single_instance import SingleInstance, instance_name
from desktop_agent.ui.status import status_view
from desktop_agent.ui.status_window import StatusWindow
from desktop_agent.ui.traffic_window import TrafficWindow
from desktop_agent.ui.tray import Tray
from desktop_agent.ui.welcome import WelcomeDialog

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.ini"
REFRESH_MS = 1000
"""The tray's tooltip and state are redrawn this often (rates, countdowns, outages)."""
SIGNAL_CHECK_MS = 250
"""How often Python gets the chance to run a signal handler while Qt waits."""


def settings_store(config_dir: Path) -> QSettings:
    """QSettings in an INI file beside the agent's other state, one folder to back up or wipe."""
    return QSettings(str(config_dir / SETTINGS_FILE), QSettings.Format.IniFormat)


def _raise(window: QWidget) -> None:
    window.show()
    window.showNormal()
    window.raise_()
    window.activateWindow()


class TrayApp:
    """The running app: one controller, the tray (or its stand-in window), and the windows.

    ``use_tray`` defaults to whether the desktop has a system tray; tests choose.
    """

    def __init__(
        self,
        controller: AgentController,
        autostart: Autostart,
        log_file: Path,
        use_tray: bool | None = None,
        preconfigured_from: Path | None = None,
    ) -> None:
        self.controller = controller
        self.preconfigured_from = preconfigured_from
        """IT's ``exitpool-agent.json``: its settings wait for the owner's yes in the welcome."""
        self.autostart = autostart
        self.log_file = log_file
        self.actions = AgentActions(
            controller, self.show_traffic, self.show_settings, self.show_about, self.quit
        )
        if use_tray is None:
            use_tray = QSystemTrayIcon.isSystemTrayAvailable()
        self.tray = Tray(self.actions, self.show_traffic) if use_tray else None
        self.status_window = None if use_tray else StatusWindow(self.actions)
        self.traffic_window: TrafficWindow | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.about_dialog: AboutDialog | None = None
        self.welcome: WelcomeDialog | None = None
        self.notifier = Notifier()
        self.finished = asyncio.Event()
        self._quitting: asyncio.Task[None] | None = None
        self.timer = QTimer()
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.signal_timer = QTimer()  # started by run_app: gives Python a turn for signals
        self.signal_timer.timeout.connect(lambda: None)
        controller.changed.connect(self.refresh)
        self._watch_network()

    # ----------------------------------------------------------- running

    def start(self) -> None:
        """Show the tray (or window), and start sharing or ask how to."""
        self.refresh()
        self.timer.start()
        if self.status_window is not None:
            _raise(self.status_window)
        if self.controller.settings.configured and self.preconfigured_from is None:
            self.controller.start()
        else:
            self.show_welcome()

    async def run(self) -> None:
        """Run until Quit."""
        self.start()
        await self.finished.wait()

    def quit(self) -> None:
        """Stop the engine cleanly (the server is told), then end :meth:`run`."""

        async def shut_down() -> None:
            self.timer.stop()
            await self.controller.stop()
            if self.tray is not None:
                self.tray.hide()
            self.finished.set()

        self._quitting = asyncio.get_running_loop().create_task(shut_down())

    def refresh(self) -> None:
        engine = self.controller.engine
        view = status_view(engine, time.time())
        icon = tray_icon(view.state, taskbar_theme(self.controller.settings.icon_theme))
        self.actions.refresh(view)
        surface = self.tray if self.tray is not None else self.status_window
        assert surface is not None
        surface.show_view(view, icon)
        if engine is not None:
            for notice in self.notifier.observe(engine, time.time()):
                log.info("notification: %s — %s", notice.title, notice.body)
                surface.notify(notice)

    def _watch_network(self) -> None:
        """Reconnect at once when the network comes back (after sleep, Wi-Fi changes…)."""
        if not QNetworkInformation.loadDefaultBackend():
            return
        info = QNetworkInformation.instance()
        if info is None:
            return

        def changed(reachability: QNetworkInformation.Reachability) -> None:
            engine = self.controller.engine
            if engine is not None and reachability in (
                QNetworkInformation.Reachability.Online,
                QNetworkInformation.Reachability.Site,
                QNetworkInformation.Reachability.Local,
            ):
                log.info("the network changed (%s): reconnecting now", reachability.name)
                engine.reconnect_now()

        info.reachabilityChanged.connect(changed)

    # ----------------------------------------------------------- windows

    def bring_forward(self) -> None:
        """Another launch asked for this instance: show what the owner most likely wants."""
        if not self.controller.settings.configured:
            self.show_welcome()
        elif self.status_window is not None:
            _raise(self.status_window)
        else:
            self.show_traffic()

    def show_traffic(self) -> None:
        if self.traffic_window is None:
            self.traffic_window = TrafficWindow(self.controller)
        _raise(self.traffic_window)

    def show_settings(self) -> None:
        if self.settings_dialog is None or not self.settings_dialog.isVisible():
            self.settings_dialog = SettingsDialog(self.controller, self.autostart)
        _raise(self.settings_dialog)

    def show_about(self) -> None:
        if self.about_dialog is None:
            self.about_dialog = AboutDialog(self.controller, self.log_file)
        _raise(self.about_dialog)

    def show_welcome(self) -> None:
        if self.welcome is not None and self.welcome.isVisible():
            _raise(self.welcome)
            return
        self.welcome = WelcomeDialog(
            copy.deepcopy(self.controller.settings), filled_from=self.preconfigured_from
        )
        self.welcome.accepted.connect(self._welcomed)
        _raise(self.welcome)

    def _welcomed(self) -> None:
        assert self.welcome is not None
        if self.welcome.start_at_login.isChecked():
            try:
                self.autostart.enable()
            except OSError:
                log.exception("could not set up start at login")
        self.controller.apply(self.welcome.settings)


def run_app(args: argparse.Namespace) -> int:
    """Build the app from command-line options and run it until Quit."""
    config_dir: Path = args.config_dir or default_config_dir()
    config_dir.mkdir(parents=True, exist_ok=True)
    log_file = setup_logging(default_log_dir(args.config_dir), args.log_level)
    qapp = QApplication(sys.argv[:1])
    qapp.setApplicationName("Exitpool Agent")
    qapp.setOrganizationName("Exitpool")
    qapp.setQuitOnLastWindowClosed(False)
    qapp.setWindowIcon(app_icon())
    single = SingleInstance(instance_name(config_dir))
    if not single.claim():
        print("exitpool-agent is already running; its window was brought forward.")
        return 0
    store = settings_store(config_dir)
    settings = AgentSettings.load(store)
    try:
        preconfigured_from = prefill_first_run(settings, args, config_dir)
    except PreconfigError as exc:
        print(f"exitpool-agent: {exc}", file=sys.stderr)
        return 2
    engine_options = {
        key: value
        for key, value in {
            "allowed_networks": tuple(args.allow_network),
            "source_address": args.source_address,
            "connect_timeout": args.connect_timeout,
        }.items()
        if value
    }
    controller = AgentController(
        settings, store, config_dir, open_store(config_dir), engine_options
    )
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    app = TrayApp(
        controller,
        Autostart(agent_command()),
        log_file,
        preconfigured_from=preconfigured_from,
    )
    single.activated.connect(app.bring_forward)
    _quit_on_signals(app, loop)
    log.info("tray app started (settings in %s, log in %s)", store.fileName(), log_file)
    with loop:
        loop.run_until_complete(app.run())
    log.info("tray app stopped")
    single.close()
    del app, controller
    qapp.shutdown()  # Qt objects go before the interpreter, not during its teardown
    return 0


def prefill_first_run(
    settings: AgentSettings, args: argparse.Namespace, config_dir: Path
) -> Path | None:
    """Fill a PC's first settings from what IT gave: the command line, else IT's file.

    Returns the file used, so the welcome dialog can say where its answers came
    from; a PC that already joined keeps its own settings and reads no file.
    """
    if settings.configured:
        return None
    asked = args.config is not None or not args.server
    found = locate(args.config, config_dir, include_downloads=True) if asked else None
    settings.server_url = args.server or (found.server if found else "")
    settings.enrollment_key = args.key or (found.enrollment_key if found else "")
    settings.name = args.name or (found.agent_name() if found else "")
    return found.source if found else None


def _quit_on_signals(app: TrayApp, loop: asyncio.AbstractEventLoop) -> None:
    """SIGTERM (logout, ``kill``) and SIGINT quit like the menu's Quit: the server is told.

    Python runs signal handlers only between bytecodes, and Qt's loop runs C++,
    so a timer hands control back to Python a few times a second.
    """

    def handle(signum: int, frame: object) -> None:
        log.info("quitting on signal %d", signum)
        loop.call_soon_threadsafe(app.quit)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    app.signal_timer.start(SIGNAL_CHECK_MS)

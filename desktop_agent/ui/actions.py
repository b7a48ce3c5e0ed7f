"""The owner's commands, as QActions shared by the tray menu and the no-tray window.

One set of actions, so "Pause sharing" reads, enables and behaves the same
wherever it is shown. :meth:`AgentActions.refresh` rewrites them from the
current :class:`StatusView` and the engine's pause state.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from desktop_agent.ui.controller import MORNING, AgentController
from desktop_agent.ui.status import StatusView

HOUR = 3600.0


class AgentActions:
    def __init__(
        self,
        controller: AgentController,
        show_traffic: Callable[[], None],
        show_settings: Callable[[], None],
        show_about: Callable[[], None],
        quit_app: Callable[[], None],
    ) -> None:
        self.controller = controller
        self.state_line = QAction("Exitpool")
        self.state_line.setEnabled(False)
        self.detail_line = QAction("")
        self.detail_line.setEnabled(False)
        self.toggle_pause = QAction("Pause sharing")
        self.toggle_pause.triggered.connect(self._toggle_pause)
        self.pause_hour = QAction("Pause for 1 hour")
        self.pause_hour.triggered.connect(lambda: controller.pause_for(HOUR))
        self.pause_tomorrow = QAction(f"Pause until tomorrow {MORNING:%H:%M}")
        self.pause_tomorrow.triggered.connect(controller.pause_until_tomorrow)
        self.traffic = QAction("Traffic…")
        self.traffic.triggered.connect(show_traffic)
        self.settings = QAction("Settings…")
        self.settings.triggered.connect(show_settings)
        self.about = QAction("About")
        self.about.triggered.connect(show_about)
        self.quit = QAction("Quit")
        self.quit.triggered.connect(quit_app)
        self.menu = QMenu()
        self.menu.addAction(self.state_line)
        self.menu.addAction(self.detail_line)
        self.menu.addSeparator()
        self.menu.addActions([self.toggle_pause, self.pause_hour, self.pause_tomorrow])
        self.menu.addSeparator()
        self.menu.addActions([self.traffic, self.settings, self.about])
        self.menu.addSeparator()
        self.menu.addAction(self.quit)

    @property
    def owner_paused(self) -> bool:
        engine = self.controller.engine
        return engine is not None and engine.paused

    def refresh(self, view: StatusView) -> None:
        self.state_line.setText(view.headline)
        self.detail_line.setText(view.detail)
        self.detail_line.setVisible(bool(view.detail))
        running = self.controller.engine is not None
        self.toggle_pause.setText("Resume sharing" if self.owner_paused else "Pause sharing")
        for action in (self.toggle_pause, self.pause_hour, self.pause_tomorrow):
            action.setEnabled(running)

    def _toggle_pause(self) -> None:
        if self.owner_paused:
            self.controller.resume()
        else:
            self.controller.pause()

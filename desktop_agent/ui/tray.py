"""The tray icon: state at a glance, the menu on a click, and the four notifications."""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from desktop_agent.ui.actions import AgentActions
from desktop_agent.ui.notices import Notice
from desktop_agent.ui.status import StatusView

NOTICE_MS = 10_000
"""How long a notification stays up where the platform lets us choose."""


class Tray:
    def __init__(self, actions: AgentActions, on_click: Callable[[], None]) -> None:
        self.actions = actions
        self.icon = QSystemTrayIcon()
        self.icon.setContextMenu(actions.menu)
        if sys.platform != "darwin":  # macOS opens the menu on a click by itself

            def clicked(reason: QSystemTrayIcon.ActivationReason) -> None:
                if reason in (
                    QSystemTrayIcon.ActivationReason.Trigger,
                    QSystemTrayIcon.ActivationReason.DoubleClick,
                ):
                    on_click()

            self.icon.activated.connect(clicked)

    def show_view(self, view: StatusView, icon: QIcon) -> None:
        self.icon.setIcon(icon)
        self.icon.setToolTip(view.tooltip)
        if not self.icon.isVisible():
            self.icon.show()

    def notify(self, notice: Notice) -> None:
        kind = (
            QSystemTrayIcon.MessageIcon.Warning
            if notice.warning
            else QSystemTrayIcon.MessageIcon.Information
        )
        self.icon.showMessage(notice.title, notice.body, kind, NOTICE_MS)

    def hide(self) -> None:
        self.icon.hide()

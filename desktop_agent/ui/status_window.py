"""The small window shown instead of a tray icon on desktops that have no tray.

Same state, same words and the same actions as the tray menu, so nothing is
out of reach when the desktop (some Linux sessions, for example) cannot show
a tray icon. Closing it minimises it; Quit ends the app.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QCloseEvent, QIcon
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from desktop_agent.ui.actions import AgentActions
from desktop_agent.ui.icons import app_icon
from desktop_agent.ui.notices import Notice
from desktop_agent.ui.status import StatusView


def _button(action: QAction) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setMinimumWidth(150)
    return button


class StatusWindow(QWidget):
    def __init__(self, actions: AgentActions) -> None:
        super().__init__()
        self.setWindowTitle("Exitpool")
        self.setWindowIcon(app_icon())
        self.state_icon = QLabel()
        self.headline = QLabel()
        self.headline.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.tooltip = QLabel()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: palette(highlight);")
        top = QHBoxLayout()
        top.addWidget(self.state_icon)
        text = QVBoxLayout()
        text.addWidget(self.headline)
        text.addWidget(self.detail)
        top.addLayout(text, 1)
        buttons = QGridLayout()
        for i, action in enumerate(
            (
                actions.toggle_pause,
                actions.pause_hour,
                actions.pause_tomorrow,
                actions.traffic,
                actions.settings,
                actions.about,
            )
        ):
            buttons.addWidget(_button(action), i // 3, i % 3)
        quit_row = QHBoxLayout()
        quit_row.addStretch()
        quit_row.addWidget(_button(actions.quit))
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tooltip)
        layout.addWidget(self.notice)
        layout.addLayout(buttons)
        layout.addLayout(quit_row)

    def show_view(self, view: StatusView, icon: QIcon) -> None:
        self.state_icon.setPixmap(icon.pixmap(48, 48))
        self.headline.setText(view.headline)
        self.detail.setText(view.detail)
        self.detail.setVisible(bool(view.detail))
        self.tooltip.setText("\n".join(view.tooltip.splitlines()[1:]))

    def notify(self, notice: Notice) -> None:
        self.notice.setText(f"{notice.title}. {notice.body}")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.showMinimized()  # with no tray, a hidden window could not be found again
        event.ignore()

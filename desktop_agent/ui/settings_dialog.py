"""Settings…: connection, limits, schedule and blocked sites, checked before they are saved.

The dialog edits a copy of :class:`AgentSettings`; OK validates the whole
copy with its own rules, shows the first problem on its tab, and only then
hands it to the controller (which reconnects only if the server, key or name
changed). "Test connection" asks the server without enrolling this PC.
"""

from __future__ import annotations

import copy
import datetime as dt

from PySide6.QtCore import QTime
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from desktop_agent.engine.check import check_connection
from desktop_agent.engine.client import websocket_url
from desktop_agent.engine.owner_rules import parse_blocked
from desktop_agent.ui.autostart import Autostart
from desktop_agent.ui.controller import AgentController
from desktop_agent.ui.icons import app_icon
from desktop_agent.ui.settings import (
    ICON_THEMES,
    MAX_BANDWIDTH_KBS,
    MAX_CONNECTIONS_LIMIT,
    MAX_DAILY_CAP_MB,
    MAX_NAME_LENGTH,
    AgentSettings,
)

OK_STYLE = "color: #1b7f3b;"
ERROR_STYLE = "color: #b3261e;"
TABS = {
    "server_url": 0,
    "enrollment_key": 0,
    "name": 0,
    "daily_cap_mb": 1,
    "bandwidth_kbs": 1,
    "max_connections": 1,
    "icon_theme": 1,
    "schedule_start": 2,
    "schedule_end": 2,
    "blocked": 3,
}
"""Which tab shows each setting, so a problem is shown where it can be fixed."""


def _spin(top: int, zero_text: str, suffix: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, top)
    spin.setSpecialValueText(zero_text)
    spin.setSuffix(suffix)
    spin.setGroupSeparatorShown(True)
    return spin


def _qtime(text: str) -> QTime:
    moment = dt.time.fromisoformat(text)
    return QTime(moment.hour, moment.minute)


class SettingsDialog(QDialog):
    def __init__(self, controller: AgentController, autostart: Autostart) -> None:
        super().__init__()
        self.controller = controller
        self.autostart = autostart
        self.setWindowTitle("Exitpool — Settings")
        self.setWindowIcon(app_icon())
        self.tabs = QTabWidget()
        self.tabs.addTab(self._connection_tab(), "Connection")
        self.tabs.addTab(self._limits_tab(), "Limits")
        self.tabs.addTab(self._schedule_tab(), "Schedule")
        self.tabs.addTab(self._blocked_tab(), "Blocked sites")
        self.problem = QLabel()
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.load(controller.settings)

    # -------------------------------------------------------------- tabs

    def _connection_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.server_url = QLineEdit()
        self.server_url.setPlaceholderText("https://exitpool.example.com")
        self.enrollment_key = QLineEdit()
        self.enrollment_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.enrollment_key.setPlaceholderText("only needed once, to join")
        self.name = QLineEdit()
        self.name.setMaxLength(MAX_NAME_LENGTH)
        self.name.setPlaceholderText("this computer's name")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        self.start_at_login = QCheckBox("Start Exitpool when I log in")
        self.start_at_login.setToolTip(self.autostart.where())
        self.credential_note = QLabel(
            f"This PC's own credential is kept in {self.controller.credentials.description}."
        )
        self.credential_note.setWordWrap(True)
        self.credential_note.setStyleSheet("color: palette(mid);")
        form.addRow("Server address", self.server_url)
        form.addRow("Enrollment key", self.enrollment_key)
        form.addRow("Display name", self.name)
        form.addRow(test_row)
        form.addRow(self.start_at_login)
        form.addRow(self.credential_note)
        return tab

    def _limits_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.daily_cap = _spin(MAX_DAILY_CAP_MB, "No limit", " MB per day")
        self.daily_cap.setToolTip("Sharing pauses when this much was carried today.")
        self.bandwidth = _spin(MAX_BANDWIDTH_KBS, "Unlimited", " KB/s")
        self.bandwidth.setToolTip("Each direction; keeps your own browsing fast.")
        self.max_connections = QSpinBox()
        self.max_connections.setRange(1, MAX_CONNECTIONS_LIMIT)
        self.let_finish = QRadioButton("let running connections finish")
        self.cut = QRadioButton("cut running connections at once")
        on_pause = QButtonGroup(tab)
        on_pause.addButton(self.let_finish)
        on_pause.addButton(self.cut)
        pause_box = QVBoxLayout()
        pause_box.addWidget(self.let_finish)
        pause_box.addWidget(self.cut)
        self.icon_theme = QComboBox()
        for value, text in zip(
            ICON_THEMES, ("Automatic", "Light taskbar", "Dark taskbar"), strict=True
        ):
            self.icon_theme.addItem(text, value)
        form.addRow("Daily data cap", self.daily_cap)
        form.addRow("Bandwidth limit", self.bandwidth)
        form.addRow("Connections at once", self.max_connections)
        form.addRow("When I pause", pause_box)
        form.addRow("Tray icon for", self.icon_theme)
        return tab

    def _schedule_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.schedule_enabled = QCheckBox("Share only at these times")
        self.schedule_start = QTimeEdit()
        self.schedule_end = QTimeEdit()
        for edit in (self.schedule_start, self.schedule_end):
            edit.setDisplayFormat("HH:mm")
        hours = QHBoxLayout()
        hours.addWidget(QLabel("Every day from"))
        hours.addWidget(self.schedule_start)
        hours.addWidget(QLabel("to"))
        hours.addWidget(self.schedule_end)
        hours.addStretch()
        self.schedule_weekends = QCheckBox("and all day on Saturdays and Sundays")
        hint = QLabel(
            "For example 18:00 to 08:00: the PC shares after work and overnight. "
            "Outside these times Exitpool pauses by itself."
        )
        hint.setWordWrap(True)
        self.schedule_enabled.toggled.connect(self._schedule_toggled)
        layout.addWidget(self.schedule_enabled)
        layout.addLayout(hours)
        layout.addWidget(self.schedule_weekends)
        layout.addWidget(hint)
        layout.addStretch()
        return tab

    def _blocked_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        explain = QLabel(
            "This PC never reaches these, on top of what is always refused "
            "(the office network, this PC itself and mail servers)."
        )
        explain.setWordWrap(True)
        self.blocked = QListWidget()
        self.new_blocked = QLineEdit()
        self.new_blocked.setPlaceholderText("example.com, example.com:443 or 203.0.113.0/24")
        self.new_blocked.returnPressed.connect(self.add_blocked)
        add = QPushButton("Add")
        add.clicked.connect(self.add_blocked)
        self.remove_blocked = QPushButton("Remove")
        self.remove_blocked.clicked.connect(self._remove_blocked)
        row = QHBoxLayout()
        row.addWidget(self.new_blocked, 1)
        row.addWidget(add)
        row.addWidget(self.remove_blocked)
        layout.addWidget(explain)
        layout.addWidget(self.blocked)
        layout.addLayout(row)
        return tab

    # ------------------------------------------------------------ values

    def load(self, settings: AgentSettings) -> None:
        self.server_url.setText(settings.server_url)
        self.enrollment_key.setText(settings.enrollment_key)
        self.name.setText(settings.name)
        self.start_at_login.setChecked(self.autostart.is_enabled())
        self.daily_cap.setValue(settings.daily_cap_mb)
        self.bandwidth.setValue(settings.bandwidth_kbs)
        self.max_connections.setValue(settings.max_connections)
        (self.cut if settings.cut_on_pause else self.let_finish).setChecked(True)
        self.icon_theme.setCurrentIndex(ICON_THEMES.index(settings.icon_theme))
        self.schedule_enabled.setChecked(settings.schedule_enabled)
        self.schedule_start.setTime(_qtime(settings.schedule_start))
        self.schedule_end.setTime(_qtime(settings.schedule_end))
        self.schedule_weekends.setChecked(settings.schedule_weekends)
        self._schedule_toggled(settings.schedule_enabled)
        self.blocked.clear()
        self.blocked.addItems(settings.blocked)

    def edited(self) -> AgentSettings:
        """The settings as the dialog shows them (not yet validated)."""
        settings = copy.deepcopy(self.controller.settings)
        settings.server_url = self.server_url.text().strip()
        settings.enrollment_key = self.enrollment_key.text().strip()
        settings.name = self.name.text().strip()
        settings.daily_cap_mb = self.daily_cap.value()
        settings.bandwidth_kbs = self.bandwidth.value()
        settings.max_connections = self.max_connections.value()
        settings.cut_on_pause = self.cut.isChecked()
        settings.icon_theme = str(self.icon_theme.currentData())
        settings.schedule_enabled = self.schedule_enabled.isChecked()
        settings.schedule_start = self.schedule_start.time().toString("HH:mm")
        settings.schedule_end = self.schedule_end.time().toString("HH:mm")
        settings.schedule_weekends = self.schedule_weekends.isChecked()
        settings.blocked = [self.blocked.item(i).text() for i in range(self.blocked.count())]
        return settings

    def _schedule_toggled(self, enabled: bool) -> None:
        for widget in (self.schedule_start, self.schedule_end, self.schedule_weekends):
            widget.setEnabled(enabled)

    def add_blocked(self) -> None:
        entry = self.new_blocked.text().strip()
        if not entry:
            return
        try:
            parse_blocked(entry)
        except ValueError as exc:
            self.problem.setText(str(exc))
            return
        existing = [self.blocked.item(i).text() for i in range(self.blocked.count())]
        if entry not in existing:
            self.blocked.addItem(entry)
        self.new_blocked.clear()
        self.problem.clear()

    def _remove_blocked(self) -> None:
        for item in self.blocked.selectedItems():
            self.blocked.takeItem(self.blocked.row(item))

    # ----------------------------------------------------------- actions

    @asyncSlot()  # type: ignore[untyped-decorator]  # qasync ships no type hints
    async def test_connection(self) -> None:
        settings = self.edited()
        problem = settings.errors().get("server_url")
        if problem:
            self._show_test(False, problem)
            return
        self.test_button.setEnabled(False)
        self.test_result.setStyleSheet("")
        self.test_result.setText("Testing…")
        try:
            # A key typed in means "join with this key": test it, not the old credential.
            credential = (
                None
                if settings.enrollment_key
                else self.controller.credentials.get(websocket_url(settings.server_url))
            )
            result = await check_connection(
                settings.server_url, settings.enrollment_key or None, credential
            )
        finally:
            self.test_button.setEnabled(True)
        self._show_test(result.ok, result.message)

    def _show_test(self, ok: bool, message: str) -> None:
        self.test_result.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)
        self.test_result.setText(("✔ " if ok else "✖ ") + message)

    def accept(self) -> None:
        settings = self.edited()
        errors = settings.errors()
        if errors:
            field, message = next(iter(errors.items()))
            self.tabs.setCurrentIndex(TABS.get(field, 0))
            self.problem.setText(message)
            return
        try:
            if self.start_at_login.isChecked() != self.autostart.is_enabled():
                if self.start_at_login.isChecked():
                    self.autostart.enable()
                else:
                    self.autostart.disable()
        except OSError as exc:
            self.problem.setText(f"Could not change start at login: {exc}")
            return
        self.problem.clear()
        self.controller.apply(settings)
        super().accept()

"""The Traffic window: what this PC carries, live, and where it went.

The owner's transparency page: throughput over the last ten minutes, totals
for today, this month and all time, and every destination reached through
this PC recently, each with a button that blocks it from now on.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_agent.engine.owner_rules import parse_blocked
from desktop_agent.engine.traffic import Destination
from desktop_agent.ui.controller import AgentController
from desktop_agent.ui.icons import app_icon
from desktop_agent.ui.rate_chart import DOWN_COLOR, UP_COLOR, RateChart
from tunnel.units import human_bytes, human_duration, human_rate

REFRESH_MS = 1000
COLUMNS = ("Destination", "Received", "Sent", "Connections", "Last used", "")


def destination_label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ago(seconds: float) -> str:
    return "just now" if seconds < 5 else f"{human_duration(seconds)} ago"


class TrafficWindow(QWidget):
    def __init__(self, controller: AgentController) -> None:
        super().__init__()
        self.controller = controller
        self.setWindowTitle("Exitpool — Traffic")
        self.setWindowIcon(app_icon())
        self.resize(720, 640)

        self.now_down = QLabel()
        self.now_up = QLabel()
        legend = QHBoxLayout()
        for label, color in ((self.now_down, DOWN_COLOR), (self.now_up, UP_COLOR)):
            label.setStyleSheet(f"color: {color.name()}; font-weight: 600;")
            legend.addWidget(label)
        legend.addStretch()
        self.chart = RateChart()

        totals_box = QGroupBox("Totals")
        totals = QGridLayout(totals_box)
        self.totals: dict[tuple[str, str], QLabel] = {}
        for column, heading in enumerate(("Received", "Sent"), start=1):
            totals.addWidget(QLabel(f"<b>{heading}</b>"), 0, column, Qt.AlignmentFlag.AlignRight)
        for row, (period, title) in enumerate(
            (("today", "Today"), ("month", "This month"), ("all", "All time")), start=1
        ):
            totals.addWidget(QLabel(title), row, 0)
            for column, direction in enumerate(("down", "up"), start=1):
                value = QLabel()
                value.setAlignment(Qt.AlignmentFlag.AlignRight)
                totals.addWidget(value, row, column)
                self.totals[(period, direction)] = value
        self.connections = QLabel()
        totals.addWidget(self.connections, 4, 0, 1, 3)

        destinations_box = QGroupBox("Recently reached through this PC")
        destinations = QVBoxLayout(destinations_box)
        explain = QLabel(
            "Every site this PC carried traffic for. Only the address is kept, not what was "
            "sent. Block a site and this PC refuses it from now on."
        )
        explain.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.empty = QLabel("Nothing has gone through this PC yet.")
        destinations.addWidget(explain)
        destinations.addWidget(self.table)
        destinations.addWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.addLayout(legend)
        layout.addWidget(self.chart, 3)
        layout.addWidget(totals_box)
        layout.addWidget(destinations_box, 4)

        self._rows: list[tuple[str, int]] = []
        self.block_buttons: dict[tuple[str, int], QPushButton] = {}
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        controller.changed.connect(self.refresh)
        self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        self.refresh()
        self.timer.start()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        self.timer.stop()
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.hide()  # the app lives on in the tray
        event.ignore()

    def refresh(self) -> None:
        engine = self.controller.engine
        if engine is None:
            return
        now = time.time()
        meter = engine.traffic
        rates = meter.rates()
        self.chart.set_samples(rates, now)
        up, down = (rates[-1].up, rates[-1].down) if rates else (0.0, 0.0)
        self.now_down.setText(f"↓ Received {human_rate(down)}")
        self.now_up.setText(f"↑ Sent {human_rate(up)}")
        totals = meter.totals()
        for (period, direction), label in self.totals.items():
            label.setText(human_bytes(getattr(totals, f"{period}_{direction}")))
        online = engine.connected_since
        self.connections.setText(
            f"Connections served: {meter.connections_served:,}   ·   "
            f"open now: {engine.open_streams}   ·   "
            + (f"online for {human_duration(now - online)}" if online else "not connected")
        )
        self._show_destinations(meter.recent_destinations(), now)

    def _show_destinations(self, destinations: list[Destination], now: float) -> None:
        keys = [(d.host, d.port) for d in destinations]
        if keys != self._rows:
            self.table.setRowCount(len(keys))
            self.block_buttons = {}
            for row, key in enumerate(keys):
                button = QPushButton("Block")
                button.setToolTip(f"Refuse {key[0]} from now on")
                button.clicked.connect(lambda _=False, host=key[0]: self._block(host))
                self.table.setCellWidget(row, len(COLUMNS) - 1, button)
                self.block_buttons[key] = button
            self._rows = keys
        self.empty.setVisible(not keys)
        self.table.setVisible(bool(keys))
        blocked = [parse_blocked(entry) for entry in self.controller.settings.blocked]
        for row, d in enumerate(destinations):
            cells = (
                destination_label(d.host, d.port),
                human_bytes(d.bytes_down),
                human_bytes(d.bytes_up),
                f"{d.connections:,}",
                _ago(now - d.last_seen),
            )
            for column, text in enumerate(cells):
                item = self.table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    if column:
                        item.setTextAlignment(
                            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                        )
                    self.table.setItem(row, column, item)
                item.setText(text)
            is_blocked = any(rule.matches(d.host, d.port) for rule in blocked)
            button = self.block_buttons[(d.host, d.port)]
            button.setEnabled(not is_blocked)
            button.setText("Blocked" if is_blocked else "Block")

    def _block(self, host: str) -> None:
        self.controller.block(host)
        self.refresh()

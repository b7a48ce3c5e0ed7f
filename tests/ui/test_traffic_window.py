"""The Traffic window shows what a real engine carried, and its Block button really blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from desktop_agent.ui.rate_chart import nice_ceiling
from desktop_agent.ui.settings import AgentSettings
from desktop_agent.ui.traffic_window import TrafficWindow
from tests.ui.conftest import NOWHERE, Live, make_controller

BODY = 300_000


def test_it_shows_the_traffic_and_destinations_a_real_request_made(live: Live) -> None:
    app = live.start_app("ui-traffic")
    qtbot = live.qtbot
    answer = live.fetch("ui-traffic", f"/bytes/{BODY}")
    assert answer.status_code == 200
    assert len(answer.content) == BODY

    app.show_traffic()
    window = app.traffic_window
    assert window is not None
    qtbot.waitUntil(lambda: window.table.rowCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: any(s.down > 0 for s in window.chart.samples), timeout=5000)

    destination = window.table.item(0, 0).text()
    assert destination == f"127.0.0.3:{live.target.port}"
    assert window.table.item(0, 3).text() == "1"
    assert window.totals[("today", "down")].text() in ("293 KB", "294 KB")
    assert window.totals[("all", "down")].text() == window.totals[("today", "down")].text()
    assert "Connections served: 1" in window.connections.text()
    assert "online for" in window.connections.text()
    assert window.chart.scale >= max(s.down for s in window.chart.samples)


def test_the_block_button_makes_that_destination_answer_403(live: Live) -> None:
    app = live.start_app("ui-block")
    qtbot = live.qtbot
    assert live.fetch("ui-block", "/ip").status_code == 200
    app.show_traffic()
    window = app.traffic_window
    assert window is not None
    qtbot.waitUntil(lambda: window.table.rowCount() == 1, timeout=5000)

    button = window.block_buttons[("127.0.0.3", live.target.port)]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    answer = live.fetch("ui-block", "/ip")
    assert answer.status_code == 403
    assert "owner" in answer.text
    assert button.text() == "Blocked"
    assert not button.isEnabled()
    assert app.controller.settings.blocked == ["127.0.0.3"]
    saved = AgentSettings.load(app.controller.store)
    assert saved.blocked == ["127.0.0.3"]


def test_it_says_so_when_nothing_went_through_yet(
    home: Path, qtbot: Any, loop: Any, stop_all: list[Any]
) -> None:
    controller = make_controller(home, AgentSettings(server_url=NOWHERE))
    stop_all.append(controller)
    controller.start()
    window = TrafficWindow(controller)
    qtbot.addWidget(window)
    window.show()

    assert window.empty.isVisible()
    assert not window.table.isVisible()
    assert "not connected" in window.connections.text()


def test_the_chart_scale_is_a_round_number_above_the_peak() -> None:
    assert nice_ceiling(0) == 1024
    assert nice_ceiling(1500) == 2 * 1024
    assert nice_ceiling(2049) == 5 * 1024
    assert nice_ceiling(700_000) == 1000 * 1024
    assert nice_ceiling(1_100_000) == 2 * 1024 * 1024
    assert nice_ceiling(30e6) == 50 * 1024 * 1024

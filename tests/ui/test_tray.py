"""The tray menu drives a real engine connected to a real server, and the icon follows.

Each test starts the app against ``exitpool-server run`` on loopback; what
the server sees is checked through the proxy itself (a request pinned to a
paused agent is answered 503 ``agent-paused``) and on the admin page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

from desktop_agent.ui.settings import AgentSettings
from desktop_agent.ui.status import TrayState, status_view
from tests.support.admin_browser import Admin
from tests.ui.conftest import NOWHERE, Live, make_app, make_controller


def test_it_shows_sharing_once_connected(live: Live) -> None:
    app = live.start_app("ui-tray-on")
    app.refresh()

    assert app.tray is not None
    assert app.actions.state_line.text() == "Sharing as ui-tray-on"
    assert app.tray.icon.toolTip().startswith("Exitpool — Sharing as ui-tray-on")
    assert "Today:" in app.tray.icon.toolTip()
    assert app.actions.toggle_pause.text() == "Pause sharing"


def test_pause_from_the_menu_stops_new_streams_and_the_admin_page_shows_it(
    live: Live, admin: Admin
) -> None:
    app = live.start_app("ui-tray-pause")
    assert app.tray is not None
    sharing_icon = app.tray.icon.icon().cacheKey()
    live.wait_for_answer("ui-tray-pause", (200, ""))

    app.actions.toggle_pause.trigger()

    live.wait_for_answer("ui-tray-pause", (503, "agent-paused"))
    app.refresh()
    assert app.actions.state_line.text() == "Paused"
    assert app.actions.toggle_pause.text() == "Resume sharing"
    assert app.tray.icon.icon().cacheKey() != sharing_icon
    assert "Paused" in app.tray.icon.toolTip()
    assert "paused by owner" in live.run(asyncio.to_thread(admin.agent_row, "ui-tray-pause"))

    app.actions.toggle_pause.trigger()

    live.wait_for_answer("ui-tray-pause", (200, ""))
    app.refresh()
    assert app.actions.state_line.text() == "Sharing as ui-tray-pause"
    assert "online" in live.run(asyncio.to_thread(admin.agent_row, "ui-tray-pause"))


def test_pause_for_an_hour_shows_when_it_ends_and_resume_lifts_it(live: Live) -> None:
    app = live.start_app("ui-tray-hour")
    engine = app.controller.engine
    assert engine is not None
    before = time.time()

    app.actions.pause_hour.trigger()
    app.refresh()

    assert engine.paused_until is not None
    assert 3590 <= engine.paused_until - before <= 3610
    ends = dt.datetime.fromtimestamp(engine.paused_until)
    same_day = ends.date() == dt.date.today()  # after 23:00 it ends tomorrow: "Sun 00:05"
    shown = ends.strftime("%H:%M" if same_day else "%a %H:%M")
    assert app.actions.state_line.text() == f"Paused until {shown}"

    app.actions.toggle_pause.trigger()
    app.refresh()

    assert engine.paused_until is None
    assert not engine.pause_reasons()


def test_pause_until_tomorrow_resumes_the_next_morning(live: Live) -> None:
    app = live.start_app("ui-tray-tomorrow")
    engine = app.controller.engine
    assert engine is not None

    app.actions.pause_tomorrow.trigger()

    assert engine.paused_until is not None
    resume = time.localtime(engine.paused_until)
    assert (resume.tm_hour, resume.tm_min) == (8, 0)
    assert 0 < engine.paused_until - time.time() <= 32 * 3600


def test_each_state_has_its_own_icon(
    home: Path, qtbot: Any, loop: Any, stop_all: list[Any]
) -> None:
    """Not set up (error), connecting to a dead port, and the same after a long outage."""
    settings = AgentSettings(server_url=NOWHERE, enrollment_key="epk_x")
    controller = make_controller(home, settings)
    stop_all.append(controller)
    app = make_app(controller, home)
    assert app.tray is not None

    app.refresh()
    not_set_up = app.tray.icon.icon().cacheKey()
    assert app.actions.state_line.text() == "Not set up yet"
    assert not app.actions.toggle_pause.isEnabled()

    controller.start()
    engine = controller.engine
    assert engine is not None
    qtbot.waitUntil(lambda: engine.offline_since is not None, timeout=10_000)
    app.refresh()
    connecting = app.tray.icon.icon().cacheKey()
    assert app.actions.state_line.text() == "Connecting to 127.0.0.1…"
    assert connecting != not_set_up

    view = status_view(engine, engine.offline_since + 61)
    assert view.state is TrayState.ERROR
    assert view.headline == "Can't reach 127.0.0.1"

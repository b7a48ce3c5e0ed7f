"""The app around the tray: first run, one instance, no-tray desktops, notifications, the log."""

from __future__ import annotations

import copy
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel

from desktop_agent import __version__
from desktop_agent.cli import build_parser
from desktop_agent.engine import preconfig
from desktop_agent.engine.owner_rules import PauseReason
from desktop_agent.engine.preconfig import PreconfigError
from desktop_agent.engine.problems import Problem
from desktop_agent.engine.state import AgentState
from desktop_agent.ui.about import AboutDialog
from desktop_agent.ui.app import TrayApp, prefill_first_run, settings_store
from desktop_agent.ui.autostart import Autostart
from desktop_agent.ui.controller import AgentController
from desktop_agent.ui.credentials import FileStore
from desktop_agent.ui.logs import LOG_BACKUPS, LOG_FILE, LOG_FILE_BYTES, setup_logging
from desktop_agent.ui.notices import Notifier
from desktop_agent.ui.settings import AgentSettings
from desktop_agent.ui.single_instance import SingleInstance, instance_name
from desktop_agent.ui.status import TrayState, status_view
from desktop_agent.ui.welcome import EXPLANATION
from tests.support.processes import AgentProcess, ServerProcess
from tests.ui.conftest import NOWHERE, Live, make_app, make_controller, online


def test_a_first_run_opens_the_welcome_dialog_and_joining_starts_sharing(
    home: Path, server: ServerProcess, key: str, qtbot: Any, loop: Any, stop_all: list[Any]
) -> None:
    controller = make_controller(home, AgentSettings())
    stop_all.append(controller)
    app = make_app(controller, home)

    app.start()

    welcome = app.welcome
    assert welcome is not None and welcome.isVisible()
    assert controller.engine is None
    welcome.server_url.setText(server.ws_url)
    welcome.enrollment_key.setText(key)
    welcome.name.setText("ui-welcome")
    welcome.start_button.click()

    qtbot.waitUntil(lambda: online(controller), timeout=20_000)
    assert (home / ".config" / "autostart" / "exitpool-agent.desktop").exists()
    saved = AgentSettings.load(controller.store)
    assert saved.server_url == server.ws_url
    assert saved.name == "ui-welcome"
    qtbot.waitUntil(lambda: AgentSettings.load(controller.store).enrollment_key == "")
    assert controller.credentials.get(server.ws_url)


def test_a_pc_preconfigured_by_it_only_asks_its_owner_to_agree(
    home: Path,
    server: ServerProcess,
    key: str,
    qtbot: Any,
    loop: Any,
    stop_all: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preconfig.platformdirs, "user_downloads_dir", lambda: str(home / "dl"))
    (home / "dl").mkdir()
    file = home / "dl" / "exitpool-agent.json"
    file.write_text(
        json.dumps({"server": server.ws_url, "enrollment_key": key, "name_prefix": "office-"})
    )
    settings = AgentSettings()
    args = build_parser().parse_args(["--config-dir", str(home / "config")])
    assert prefill_first_run(settings, args, home / "config") == file
    controller = make_controller(home, settings)
    stop_all.append(controller)
    app = TrayApp(
        controller,
        Autostart(["exitpool-agent"], system="Linux", home=home),
        home / "agent.log",
        preconfigured_from=file,
    )

    app.start()

    welcome = app.welcome
    assert welcome is not None and welcome.isVisible()
    assert controller.engine is None  # nothing is shared before the owner agrees
    assert str(file) in welcome.filled_from.text()
    assert welcome.server_url.text() == server.ws_url
    assert welcome.name.text() == f"office-{socket.gethostname()}"
    welcome.start_button.click()
    qtbot.waitUntil(lambda: online(controller), timeout=20_000)
    assert AgentSettings.load(controller.store).name == f"office-{socket.gethostname()}"


def test_a_pc_that_joined_reads_no_preconfiguration(home: Path) -> None:
    (home / "config" / "exitpool-agent.json").write_text("{broken")
    settings = AgentSettings(server_url="wss://ep.example.com/ws/agent", name="mine")
    args = build_parser().parse_args([])
    assert prefill_first_run(settings, args, home / "config") is None
    assert settings.name == "mine"


def test_a_broken_preconfiguration_passed_by_it_is_refused_with_its_reason(home: Path) -> None:
    bad = home / "bad.json"
    bad.write_text('{"server": "ftp://x", "enrollment_key": "k"}')
    args = build_parser().parse_args(["--config", str(bad)])
    with pytest.raises(PreconfigError, match="server URL must be"):
        prefill_first_run(AgentSettings(), args, home / "config")


def test_the_welcome_dialog_insists_on_a_server_and_a_key(
    home: Path, qtbot: Any, loop: Any
) -> None:
    app = make_app(make_controller(home, AgentSettings()), home)
    app.show_welcome()
    welcome = app.welcome
    assert welcome is not None

    welcome.start_button.click()
    assert "server address" in welcome.problem.text()

    welcome.server_url.setText(NOWHERE)
    welcome.start_button.click()
    assert "enrollment key" in welcome.problem.text()
    assert welcome.isVisible()


def test_the_welcome_text_says_what_is_shared_and_what_is_protected() -> None:
    for words in ("office network", "this PC itself", "pause or quit", "Mail servers"):
        assert words in EXPLANATION


def test_a_second_launch_brings_the_first_forward(tmp_path: Path, qtbot: Any) -> None:
    name = instance_name(tmp_path)
    first = SingleInstance(name)
    assert first.claim()

    second = SingleInstance(name)
    with qtbot.waitSignal(first.activated, timeout=5000):
        assert not second.claim()
    first.close()
    second.close()


def test_a_socket_left_by_a_crashed_instance_is_taken_over(tmp_path: Path, qtbot: Any) -> None:
    name = instance_name(tmp_path)
    crashed = SingleInstance(name)
    assert crashed.claim()
    crashed.server.close()  # closed without answering, as after a crash

    assert SingleInstance(name).claim()


def test_without_a_tray_it_shows_a_window_with_the_same_actions(
    home: Path, server: ServerProcess, key: str, qtbot: Any, loop: Any, stop_all: list[Any]
) -> None:
    settings = AgentSettings(server_url=server.ws_url, enrollment_key=key, name="ui-no-tray")
    controller = make_controller(home, settings)
    stop_all.append(controller)
    app = make_app(controller, home, use_tray=False)

    app.start()
    qtbot.waitUntil(lambda: online(controller), timeout=20_000)
    app.refresh()

    window = app.status_window
    assert app.tray is None and window is not None
    assert window.isVisible()
    assert window.headline.text() == "Sharing as ui-no-tray"
    assert "Connected" in window.notice.text() or "connected" in window.notice.text()
    app.actions.toggle_pause.trigger()
    app.refresh()
    assert window.headline.text() == "Paused"
    window.close()
    assert window.isVisible()  # closing only minimises: there is no tray to come back from


def test_it_notifies_connected_lost_and_revoked_once_each(live: Live) -> None:
    app = live.start_app("ui-notices")
    engine = app.controller.engine
    assert engine is not None
    notifier = Notifier()

    first = notifier.observe(engine, 1000.0)
    assert [n.title for n in first] == ["Exitpool is connected"]
    assert notifier.observe(engine, 1001.0) == []

    live.server.cli("revokeagent", "ui-notices")
    live.qtbot.waitUntil(lambda: engine.problem is Problem.REVOKED, timeout=20_000)
    assert engine.offline_since is not None
    titles = [n.title for n in notifier.observe(engine, engine.offline_since + 120)]
    assert titles == ["This PC was removed from Exitpool"]
    assert notifier.observe(engine, engine.offline_since + 180) == []
    assert status_view(engine, engine.offline_since + 120).state is TrayState.ERROR


def test_it_notifies_a_connection_lost_for_more_than_a_minute(
    home: Path, qtbot: Any, loop: Any, stop_all: list[Any]
) -> None:
    settings = AgentSettings(server_url=NOWHERE, enrollment_key="epk_x")
    controller = make_controller(home, settings)
    stop_all.append(controller)
    controller.start()
    engine = controller.engine
    assert engine is not None
    qtbot.waitUntil(lambda: engine.offline_since is not None, timeout=10_000)
    assert engine.offline_since is not None
    notifier = Notifier()

    assert notifier.observe(engine, engine.offline_since + 30) == []
    lost = notifier.observe(engine, engine.offline_since + 61)
    assert [n.title for n in lost] == ["Exitpool lost its connection"]
    assert lost[0].warning
    assert notifier.observe(engine, engine.offline_since + 120) == []


def test_about_names_the_version_and_the_log_file(home: Path, qtbot: Any, loop: Any) -> None:
    controller = make_controller(home, AgentSettings(server_url=NOWHERE))
    dialog = AboutDialog(controller, home / "logs" / LOG_FILE)
    qtbot.addWidget(dialog)

    text = " ".join(label.text() for label in dialog.findChildren(QLabel))

    assert __version__ in text
    assert str(home / "logs" / LOG_FILE) in text
    assert dialog.open_log.text() == "Open log folder"


@pytest.fixture
def clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_log_file_rotates_and_keeps_a_bounded_size(
    tmp_path: Path, clean_logging: None, capsys: Any
) -> None:
    path = setup_logging(tmp_path / "logs")
    line = "x" * 1000
    for _ in range(int(LOG_FILE_BYTES * (LOG_BACKUPS + 2) / 1000)):
        logging.getLogger("tests.rotation").info(line)
    capsys.readouterr()

    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert path.name == LOG_FILE
    assert len(files) == LOG_BACKUPS + 1
    total = sum(p.stat().st_size for p in (tmp_path / "logs").iterdir())
    assert total <= LOG_FILE_BYTES * (LOG_BACKUPS + 1)


def test_a_new_key_after_a_revocation_joins_the_pc_again(live: Live) -> None:
    app = live.start_app("ui-rejoin")
    live.server.cli("revokeagent", "ui-rejoin")
    engine = app.controller.engine
    assert engine is not None
    live.qtbot.waitUntil(lambda: engine.problem is Problem.REVOKED, timeout=20_000)

    settings = copy.deepcopy(app.controller.settings)
    settings.enrollment_key = live.server.enrollment_key("ui rejoin")
    app.controller.apply(settings)

    live.qtbot.waitUntil(lambda: online(app.controller), timeout=20_000)
    assert app.controller.engine is not engine
    assert app.controller.engine is not None
    assert app.controller.engine.agent_name == "ui-rejoin-2"


def test_it_notifies_once_when_the_daily_cap_pauses_sharing(live: Live) -> None:
    app = live.start_app("ui-cap")
    engine = app.controller.engine
    assert engine is not None
    settings = copy.deepcopy(app.controller.settings)
    settings.daily_cap_mb = 1
    app.controller.apply(settings)
    notifier = Notifier()
    notifier.observe(engine, time.time())  # "connected"

    assert live.fetch("ui-cap", "/bytes/1500000").status_code == 200
    live.qtbot.waitUntil(lambda: PauseReason.DAILY_CAP in engine.pause_reasons(), timeout=5000)

    titles = [n.title for n in notifier.observe(engine, time.time())]
    assert titles == ["Today's sharing limit reached"]
    assert notifier.observe(engine, time.time()) == []
    app.refresh()
    assert app.actions.state_line.text() == "Paused: today's limit reached"


def test_a_pc_that_ran_headless_keeps_its_place_in_the_pool(
    home: Path, server: ServerProcess, key: str, qtbot: Any, loop: Any, stop_all: list[Any]
) -> None:
    headless = AgentProcess(home, server, key, "ui-moved", "127.0.0.2").start()
    headless.terminate()
    config_dir = headless.config_dir
    settings = AgentSettings(server_url=server.ws_url, name="ui-moved")
    store = settings_store(config_dir)
    controller = AgentController(settings, store, config_dir, FileStore(config_dir))
    stop_all.append(controller)

    controller.start()

    qtbot.waitUntil(lambda: online(controller), timeout=20_000)
    assert controller.engine is not None
    assert controller.engine.agent_name == "ui-moved"  # the same agent, not a new one
    assert controller.credentials.get(server.ws_url)
    assert AgentState(config_dir).credential(server.ws_url) is None  # not left in plain JSON

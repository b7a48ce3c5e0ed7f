"""Settings: saved and read back through QSettings, validated, and edited in the dialog."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from desktop_agent.engine.owner_rules import Schedule
from desktop_agent.ui.app import settings_store
from desktop_agent.ui.autostart import Autostart
from desktop_agent.ui.settings import KIB, AgentSettings
from desktop_agent.ui.settings_dialog import SettingsDialog
from tests.ui.conftest import NOWHERE, make_controller

GOOD = AgentSettings(
    server_url="https://exitpool.example.com",
    enrollment_key="epk_test",
    name="front desk",
    daily_cap_mb=500,
    bandwidth_kbs=300,
    max_connections=40,
    schedule_enabled=True,
    schedule_start="18:30",
    schedule_end="07:45",
    schedule_weekends=False,
    blocked=["ads.example.com", "203.0.113.0/24", "example.org:8080"],
    cut_on_pause=True,
    icon_theme="dark",
)


def test_it_reads_back_every_setting_it_saved(tmp_path: Path) -> None:
    GOOD.save(settings_store(tmp_path))

    assert AgentSettings.load(settings_store(tmp_path)) == GOOD


def test_it_reads_a_single_blocked_entry_back_as_a_list(tmp_path: Path) -> None:
    one = AgentSettings(server_url=NOWHERE, blocked=["ads.example.com"])
    one.save(settings_store(tmp_path))

    assert AgentSettings.load(settings_store(tmp_path)).blocked == ["ads.example.com"]


def test_a_first_run_has_nothing_configured(tmp_path: Path) -> None:
    settings = AgentSettings.load(settings_store(tmp_path))

    assert settings == AgentSettings()
    assert not settings.configured


def test_it_replaces_a_hand_edited_bad_value_with_its_default(tmp_path: Path) -> None:
    store = settings_store(tmp_path)
    GOOD.save(store)
    store.setValue("max_connections", "99999")
    store.setValue("daily_cap_mb", "lots")
    store.setValue("schedule_start", "25:99")
    store.sync()

    loaded = AgentSettings.load(QSettings(store.fileName(), QSettings.Format.IniFormat))

    assert loaded.max_connections == AgentSettings().max_connections
    assert loaded.daily_cap_mb == 0
    assert loaded.schedule_start == AgentSettings().schedule_start
    assert loaded.blocked == GOOD.blocked


def test_it_names_each_invalid_field_in_plain_words() -> None:
    bad = AgentSettings(
        server_url="ftp://exitpool.example.com",
        name="x" * 101,
        max_connections=0,
        bandwidth_kbs=-1,
        schedule_end="8 pm",
        blocked=["exa mple.com"],
        icon_theme="pink",
    )

    errors = bad.errors()

    assert set(errors) == {
        "server_url",
        "name",
        "max_connections",
        "bandwidth_kbs",
        "schedule_end",
        "blocked",
        "icon_theme",
    }
    assert "https://" in errors["server_url"]
    assert "exa mple.com" in errors["blocked"]


def test_it_asks_for_a_server_when_there_is_none() -> None:
    assert "server address" in AgentSettings().errors()["server_url"]


def test_it_turns_settings_into_the_owners_rules() -> None:
    rules = GOOD.rules()

    assert rules.daily_cap_bytes == 500 * KIB * KIB
    assert rules.bandwidth_limit == 300 * KIB
    assert rules.max_streams == 40
    assert rules.schedule == Schedule(dt.time(18, 30), dt.time(7, 45), frozenset())
    assert rules.blocked == tuple(GOOD.blocked)
    assert rules.cut_streams_on_pause


def test_zero_means_no_cap_and_no_bandwidth_limit() -> None:
    rules = AgentSettings(server_url=NOWHERE).rules()

    assert rules.daily_cap_bytes is None
    assert rules.bandwidth_limit is None
    assert rules.schedule is None


def test_weekends_mean_saturday_and_sunday_all_day() -> None:
    settings = AgentSettings(schedule_enabled=True, schedule_weekends=True)

    schedule = settings.schedule()

    assert schedule is not None
    assert schedule.all_day == frozenset({5, 6})


def dialog_for(
    home: Path, qtbot: Any, settings: AgentSettings, stop_all: list[Any] | None = None
) -> SettingsDialog:
    controller = make_controller(home, settings)
    if stop_all is not None:
        stop_all.append(controller)
    dialog = SettingsDialog(controller, Autostart(["exitpool-agent"], system="Linux", home=home))
    qtbot.addWidget(dialog)
    return dialog


def test_the_dialog_shows_the_saved_settings_and_gives_them_back(
    home: Path, qtbot: Any, loop: Any
) -> None:
    dialog = dialog_for(home, qtbot, AgentSettings(**vars(GOOD) | {"blocked": list(GOOD.blocked)}))

    assert dialog.server_url.text() == GOOD.server_url
    assert dialog.daily_cap.value() == 500
    assert dialog.schedule_start.time().toString("HH:mm") == "18:30"
    assert dialog.cut.isChecked()
    assert dialog.edited() == GOOD


def test_ok_saves_valid_settings_and_turns_on_start_at_login(
    home: Path, qtbot: Any, loop: Any, stop_all: list[Any]
) -> None:
    dialog = dialog_for(home, qtbot, AgentSettings(server_url=NOWHERE), stop_all)
    dialog.daily_cap.setValue(250)
    dialog.start_at_login.setChecked(True)
    dialog.new_blocked.setText("tracker.example.net")
    dialog.add_blocked()

    dialog.accept()

    saved = AgentSettings.load(settings_store(home / "config"))
    assert saved.daily_cap_mb == 250
    assert saved.blocked == ["tracker.example.net"]
    assert (home / ".config" / "autostart" / "exitpool-agent.desktop").exists()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted
    qtbot.waitUntil(lambda: dialog.controller.engine is not None)


def test_ok_refuses_an_invalid_server_and_shows_why_on_its_tab(
    home: Path, qtbot: Any, loop: Any
) -> None:
    dialog = dialog_for(home, qtbot, AgentSettings(server_url=NOWHERE))
    dialog.tabs.setCurrentIndex(3)
    dialog.server_url.setText("exitpool.example.com:8000")

    dialog.accept()

    assert dialog.tabs.currentIndex() == 0
    assert "https://" in dialog.problem.text()
    assert AgentSettings.load(settings_store(home / "config")).server_url == NOWHERE


def test_adding_a_malformed_blocked_site_is_refused_with_a_reason(
    home: Path, qtbot: Any, loop: Any
) -> None:
    dialog = dialog_for(home, qtbot, AgentSettings(server_url=NOWHERE))
    dialog.new_blocked.setText("not a host")

    dialog.add_blocked()

    assert dialog.blocked.count() == 0
    assert "not a host" in dialog.problem.text()

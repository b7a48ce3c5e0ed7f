"""``exitpool-agent`` with no flags, as a real process: it shares, stays single, quits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests

from desktop_agent.ui.app import settings_store
from desktop_agent.ui.logs import LOG_FILE
from desktop_agent.ui.settings import AgentSettings
from tests.support.processes import AGENT_BIN, ServerProcess, wait_for
from tests.support.target import TargetProcess
from tests.ui.conftest import PASSWORD, USER

NAME = "ui-process"


OPTIONS = ("--allow-network", "127.0.0.0/8", "--source-address", "127.0.0.2")


def launch(config_dir: Path, output: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """The app as an office PC starts it (no flags but the test's network widening).

    Its log goes to its file; ``output`` is for the short-lived second launch.
    """
    return subprocess.Popen(
        [AGENT_BIN, "--config-dir", str(config_dir), *OPTIONS],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def test_it_carries_traffic_keeps_one_instance_and_quits_cleanly_on_sigterm(
    tmp_path: Path, server: ServerProcess, key: str, target: TargetProcess
) -> None:
    config_dir = tmp_path / "agent"
    config_dir.mkdir()
    AgentSettings(server_url=server.ws_url, enrollment_key=key, name=NAME).save(
        settings_store(config_dir)
    )
    log = config_dir / "logs" / LOG_FILE
    app = launch(config_dir)
    try:
        wait_for(
            lambda: (log.exists() and "online as" in log.read_text()) or app.poll() is not None,
            30,
            "the tray app to come online",
        )
        assert app.poll() is None, log.read_text() if log.exists() else "no log"
        proxy = server.proxy_url(f"{USER}-agent-{NAME}", PASSWORD)
        answer = requests.get(f"{target.url}/ip", proxies={"http": proxy}, timeout=10)
        assert answer.status_code == 200
        assert answer.text.strip() == "127.0.0.2"

        second = launch(config_dir, subprocess.PIPE)
        assert second.wait(20) == 0
        assert b"already running" in second.communicate()[0]

        app.send_signal(signal.SIGTERM)
        assert app.wait(15) == 0
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    text = log.read_text()
    assert "quitting on signal 15" in text
    assert "tray app stopped" in text
    assert AgentSettings.load(settings_store(config_dir)).enrollment_key == ""


def test_without_a_screen_it_says_to_use_headless(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)

    done = subprocess.run(
        [AGENT_BIN, "--config-dir", str(tmp_path)], env=env, capture_output=True, timeout=30
    )

    assert done.returncode == 2
    assert b"--headless" in done.stderr

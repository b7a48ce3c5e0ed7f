"""The tray app's log: a rotating file in the user's log folder, reachable from About.

An office worker never sees a console, so what the engine logs must land in
a file IT can ask for. Size-bounded: at most ``LOG_FILE_BYTES`` *
(``LOG_BACKUPS`` + 1) on disk, however long the PC runs.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

import platformdirs

LOG_FILE = "exitpool-agent.log"
LOG_FILE_BYTES = 1_000_000
"""One log file's size before it rotates."""
LOG_BACKUPS = 5
"""Rotated files kept."""


def default_log_dir(config_dir: Path | None = None) -> Path:
    """``<config dir>/logs`` when the config dir was chosen (tests, portable use), else the OS's."""
    if config_dir is not None or os.environ.get("EXITPOOL_AGENT_HOME"):
        base = config_dir or Path(os.environ["EXITPOOL_AGENT_HOME"])
        return base / "logs"
    return Path(platformdirs.user_log_dir("exitpool-agent", "Exitpool"))


def setup_logging(directory: Path, level: str = "INFO") -> Path:
    """Send the root logger to the rotating file (and to stderr); return the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_FILE
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    console = logging.StreamHandler()
    console.setFormatter(formatter)
    root = logging.getLogger()
    root.setLevel(level.upper())
    root.addHandler(handler)
    root.addHandler(console)
    return path

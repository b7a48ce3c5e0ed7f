"""The owner's settings: what the Settings dialog edits and QSettings keeps.

:class:`AgentSettings` is a plain value with its own validation, so the
dialog, the welcome dialog and the tests share one set of rules. It becomes
the engine's :class:`AgentConfig` (how to connect) and :class:`OwnerRules`
(what to share). The credential is not here: it lives in the OS keyring
(:mod:`desktop_agent.ui.credentials`). The enrollment key is kept only until
the PC has enrolled, then forgotten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from desktop_agent.engine.client import websocket_url
from desktop_agent.engine.config import AgentConfig
from desktop_agent.engine.owner_rules import OwnerRules, Schedule, parse_blocked

MAX_CONNECTIONS_LIMIT = 1024
"""Highest "maximum concurrent connections" the dialog accepts."""
MAX_DAILY_CAP_MB = 10_000_000
MAX_BANDWIDTH_KBS = 10_000_000
MAX_NAME_LENGTH = 100
"""The server keeps agent names up to this length."""
ICON_THEMES = ("auto", "light", "dark")
"""Which taskbar the tray icon is drawn for; "auto" follows the system's colour scheme."""
KIB = 1024


def _parse_time(text: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like 18:00") from None


@dataclass
class AgentSettings:
    server_url: str = ""
    enrollment_key: str = ""
    name: str = ""
    daily_cap_mb: int = 0
    """0 = no cap."""
    bandwidth_kbs: int = 0
    """0 = unlimited; applies to each direction."""
    max_connections: int = 256
    schedule_enabled: bool = False
    schedule_start: str = "18:00"
    schedule_end: str = "08:00"
    schedule_weekends: bool = True
    """With a schedule: also share all day on Saturday and Sunday."""
    blocked: list[str] = field(default_factory=list)
    cut_on_pause: bool = False
    """Pausing cuts running connections instead of letting them finish."""
    icon_theme: str = "auto"

    @property
    def configured(self) -> bool:
        """Whether there is a server to connect to (else the welcome dialog opens)."""
        return bool(self.server_url.strip())

    def errors(self) -> dict[str, str]:
        """Field name → what is wrong with it, in words for the owner. Empty when valid."""
        problems: dict[str, str] = {}
        if self.server_url.strip():
            try:
                websocket_url(self.server_url)
            except ValueError:
                problems["server_url"] = (
                    "The server address must start with https:// (or wss://, http://, ws://)."
                )
        else:
            problems["server_url"] = "Enter the server address your IT contact gave you."
        if len(self.name) > MAX_NAME_LENGTH:
            problems["name"] = f"The name can have at most {MAX_NAME_LENGTH} characters."
        for name, value, top in (
            ("daily_cap_mb", self.daily_cap_mb, MAX_DAILY_CAP_MB),
            ("bandwidth_kbs", self.bandwidth_kbs, MAX_BANDWIDTH_KBS),
        ):
            if not 0 <= value <= top:
                problems[name] = f"Choose a number from 0 (no limit) to {top:,}."
        if not 1 <= self.max_connections <= MAX_CONNECTIONS_LIMIT:
            problems["max_connections"] = (
                f"Choose from 1 to {MAX_CONNECTIONS_LIMIT} connections at once."
            )
        for name in ("schedule_start", "schedule_end"):
            try:
                _parse_time(getattr(self, name))
            except ValueError as exc:
                problems[name] = str(exc)
        for entry in self.blocked:
            try:
                parse_blocked(entry)
            except ValueError as exc:
                problems["blocked"] = str(exc)
                break
        if self.icon_theme not in ICON_THEMES:
            problems["icon_theme"] = f"Choose one of {', '.join(ICON_THEMES)}."
        return problems

    def schedule(self) -> Schedule | None:
        if not self.schedule_enabled:
            return None
        return Schedule(
            start=_parse_time(self.schedule_start),
            end=_parse_time(self.schedule_end),
            all_day=frozenset({5, 6}) if self.schedule_weekends else frozenset(),
        )

    def rules(self) -> OwnerRules:
        """What the owner allows, for :meth:`AgentEngine.set_rules`."""
        return OwnerRules(
            daily_cap_bytes=self.daily_cap_mb * KIB * KIB or None,
            bandwidth_limit=self.bandwidth_kbs * KIB or None,
            max_streams=self.max_connections,
            schedule=self.schedule(),
            blocked=tuple(self.blocked),
            cut_streams_on_pause=self.cut_on_pause,
        )

    def engine_config(self, config_dir: Path, **extra: Any) -> AgentConfig:
        """How to connect; ``extra`` carries command-line options such as ``allowed_networks``."""
        return AgentConfig(
            server_url=self.server_url.strip(),
            enrollment_key=self.enrollment_key.strip() or None,
            name=self.name.strip(),
            config_dir=config_dir,
            max_streams=self.max_connections,
            **extra,
        )

    def connection_changed(self, other: AgentSettings) -> bool:
        """Whether going from ``other`` to these settings needs a new connection."""
        return (self.server_url, self.enrollment_key, self.name) != (
            other.server_url,
            other.enrollment_key,
            other.name,
        )

    # ----------------------------------------------------------- storage

    @classmethod
    def load(cls, store: QSettings) -> AgentSettings:
        """Read what was saved; a missing or unreadable value takes its default."""
        defaults = cls()
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            default = getattr(defaults, item.name)
            raw = store.value(item.name, None)
            values[item.name] = default if raw is None else _coerce(raw, default)
        loaded = cls(**values)
        for name in loaded.errors():
            if name != "server_url":  # an unset server is how a first run looks
                setattr(loaded, name, getattr(defaults, name))
        return loaded

    def save(self, store: QSettings) -> None:
        for item in dataclasses.fields(self):
            store.setValue(item.name, getattr(self, item.name))
        store.sync()


def _coerce(raw: Any, default: Any) -> Any:
    """QSettings' INI backend gives strings back; turn them into the default's type."""
    try:
        if isinstance(default, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, list):
            if isinstance(raw, str):
                return [raw] if raw else []
            return [str(item) for item in raw]
        return str(raw)
    except (TypeError, ValueError):
        return default

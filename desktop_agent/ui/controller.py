"""The one object between the windows and the engine.

Windows call its methods (pause, resume, block, apply settings) and redraw on
its ``changed`` signal; it owns the running :class:`AgentEngine`, restarts it
when the server or key changes, and keeps the saved settings in step with
what the engine does (a destination blocked from the Traffic window is saved
too). Everything runs on the one qasync loop, so engine callbacks arrive on
the Qt thread and can emit signals directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal

from desktop_agent.engine.client import AgentEngine, Status, websocket_url
from desktop_agent.engine.owner_rules import parse_blocked
from desktop_agent.engine.state import AgentState, StateFileCredentials
from desktop_agent.ui.credentials import CredentialStore
from desktop_agent.ui.settings import AgentSettings

log = logging.getLogger(__name__)

MORNING = dt.time(8, 0)
""""Pause until tomorrow" resumes at this local time the next day."""


def tomorrow_morning(now: dt.datetime) -> dt.datetime:
    """The next day at :data:`MORNING`, in ``now``'s time zone."""
    return dt.datetime.combine(now.date() + dt.timedelta(days=1), MORNING, now.tzinfo)


class AgentController(QObject):
    changed = Signal()
    """The engine's state changed (status, pause, identity, problem, rules)."""

    def __init__(
        self,
        settings: AgentSettings,
        store: QSettings,
        config_dir: Path,
        credentials: CredentialStore,
        engine_options: dict[str, Any] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.config_dir = config_dir
        self.credentials = credentials
        self.engine_options = engine_options or {}
        """Command-line options for the engine (``allowed_networks``, ``source_address``)."""
        self.clock = clock
        self.engine: AgentEngine | None = None
        self._task: asyncio.Task[None] | None = None
        self._restarting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ engine

    def start(self) -> None:
        """Start sharing with the saved settings (nothing happens until they name a server)."""
        if self._task is not None or not self.settings.configured:
            return
        self._adopt_headless_credential()
        engine = AgentEngine(
            self.settings.engine_config(self.config_dir, **self.engine_options),
            credentials=self.credentials,
            clock=self.clock,
            rules=self.settings.rules(),
        )
        engine.add_listener(self._engine_changed)
        self.engine = engine
        self._task = asyncio.get_running_loop().create_task(engine.run())
        self._task.add_done_callback(self._engine_ended)
        self.changed.emit()

    def _adopt_headless_credential(self) -> None:
        """A PC that ran ``exitpool-agent --headless`` keeps its place in the pool: its
        credential moves from ``agent-state.json`` into this app's store (the keyring)."""
        url = websocket_url(self.settings.server_url)
        state = AgentState(self.config_dir)
        legacy = StateFileCredentials(state).get(url)
        if legacy and self.credentials.get(url) is None:
            self.credentials.set(url, legacy)
            state.update(url, credential=None)
            log.info(
                "moved this PC's credential from %s to %s",
                state.path.name,
                self.credentials.description,
            )

    async def stop(self) -> None:
        """Close the connection (the server sees a clean goodbye) and wait for the engine."""
        task, engine = self._task, self.engine
        if task is None or engine is None:
            return
        engine.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            task.cancel()
        self._task = None

    def _engine_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the engine stopped", exc_info=task.exception())

    def _engine_changed(self, engine: AgentEngine) -> None:
        if engine is not self.engine:
            return
        if (
            engine.status is Status.ONLINE
            and self.settings.enrollment_key
            and self.credentials.get(engine.url)
        ):
            # Enrolled: the PC has its own credential now; the fleet's key is not kept.
            self.settings.enrollment_key = ""
            self.settings.save(self.store)
        self.changed.emit()

    # ------------------------------------------------------ owner actions

    def pause(self, until: float | None = None) -> None:
        if self.engine is not None:
            self.engine.pause(until)

    def pause_for(self, seconds: float) -> None:
        self.pause(time.time() + seconds)

    def pause_until_tomorrow(self) -> None:
        now = self.clock() if self.clock else dt.datetime.now().astimezone()
        self.pause(tomorrow_morning(now).timestamp())

    def resume(self) -> None:
        if self.engine is not None:
            self.engine.resume()

    def block(self, entry: str) -> None:
        """Refuse ``entry`` from now on, and remember it in the settings."""
        parse_blocked(entry)
        if entry not in self.settings.blocked:
            self.settings.blocked.append(entry)
            self.settings.save(self.store)
        if self.engine is not None:
            self.engine.block(entry)
        self.changed.emit()

    def apply(self, new: AgentSettings) -> None:
        """Save ``new``; reconnect only if the server, key or name changed."""
        old, self.settings = self.settings, new
        new.save(self.store)
        if new.enrollment_key and new.enrollment_key != old.enrollment_key:
            # A new key means joining again (after a revocation, say): the engine would
            # otherwise keep offering the old credential and never use the key.
            self.credentials.delete(websocket_url(new.server_url))
        if self.engine is not None and not new.connection_changed(old):
            self.engine.set_rules(new.rules())
            self.changed.emit()
            return
        self._restarting = asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        await self.stop()
        self.engine = None
        self.start()
        self.changed.emit()

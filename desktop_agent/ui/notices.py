"""Which changes deserve a desktop notification, each told once.

An owner who forgets the agent for weeks should hear about exactly four
things: that it connected, that it has been cut off for more than a minute,
that today's cap stopped it, and that the administrator removed the PC.
Qt-free: the tray turns each :class:`Notice` into a balloon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from desktop_agent.engine.client import Status
from desktop_agent.engine.owner_rules import PauseReason
from desktop_agent.engine.problems import Problem
from desktop_agent.ui.status import LONG_OUTAGE

if TYPE_CHECKING:
    from desktop_agent.engine.client import AgentEngine


@dataclass(frozen=True)
class Notice:
    title: str
    body: str
    warning: bool = False


class Notifier:
    """Watches the engine after each change (and once a second) and says what is news."""

    def __init__(self, lost_after: float = LONG_OUTAGE) -> None:
        self.lost_after = lost_after
        self._told_connected = False
        self._told_lost = False
        self._told_cap_on: dt.date | None = None
        self._told_revoked = False

    def observe(self, engine: AgentEngine, now: float) -> list[Notice]:
        notices = []
        if engine.status is Status.ONLINE:
            if not self._told_connected or self._told_lost:
                name = engine.agent_name or "this PC"
                notices.append(
                    Notice(
                        "Exitpool is connected",
                        f"Sharing this PC's connection as {name}. "
                        "Pause it any time from the tray icon.",
                    )
                )
            self._told_connected, self._told_lost, self._told_revoked = True, False, False
        elif (
            engine.offline_since is not None
            and now - engine.offline_since >= self.lost_after
            and not self._told_lost
            and engine.problem is not Problem.REVOKED
        ):
            self._told_lost = True
            since = dt.datetime.fromtimestamp(engine.offline_since).strftime("%H:%M")
            notices.append(
                Notice(
                    "Exitpool lost its connection",
                    f"The server has not answered since {since}. It keeps trying on its own.",
                    warning=True,
                )
            )
        if engine.problem is Problem.REVOKED and not self._told_revoked:
            self._told_revoked = True
            notices.append(
                Notice(
                    "This PC was removed from Exitpool",
                    "The administrator revoked it, so nothing is shared any more.",
                    warning=True,
                )
            )
        today = dt.datetime.fromtimestamp(now).date()
        if PauseReason.DAILY_CAP in engine.pause_reasons() and self._told_cap_on != today:
            self._told_cap_on = today
            notices.append(
                Notice(
                    "Today's sharing limit reached",
                    "Exitpool paused itself and resumes tomorrow. Change the limit in Settings.",
                )
            )
        return notices

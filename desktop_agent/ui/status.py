"""What the owner is told about the engine: one of four tray states and the words for it.

Qt-free, so every sentence can be tested against a real engine's state. The
tray icon, its tooltip, the menu's first line and the fallback window all
render a :class:`StatusView`; none of them reads the engine on its own.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from desktop_agent.engine.client import Status
from desktop_agent.engine.owner_rules import PauseReason
from desktop_agent.engine.problems import Problem
from tunnel.units import human_bytes, human_rate

if TYPE_CHECKING:
    from desktop_agent.engine.client import AgentEngine

LONG_OUTAGE = 60.0
"""Seconds without the server before "connecting" becomes an error the owner should see."""


class TrayState(enum.Enum):
    """The four icons: each has its own shape and colour (resources/icons)."""

    SHARING = "sharing"
    PAUSED = "paused"
    CONNECTING = "connecting"
    ERROR = "error"


@dataclass(frozen=True)
class StatusView:
    state: TrayState
    headline: str
    """One line: the menu's first entry and the fallback window's title line."""
    detail: str
    """What to do about it, or empty."""
    tooltip: str


_HARD_PROBLEMS = {
    Problem.BAD_KEY: (
        "The server refused the enrollment key",
        "Ask your IT contact for a new key and enter it in Settings.",
    ),
    Problem.REVOKED: (
        "This PC was removed from the pool",
        "The administrator revoked it. Nothing is shared. Ask IT to add it again.",
    ),
    Problem.NO_KEY: (
        "Not set up yet",
        "Enter the server address and enrollment key in Settings.",
    ),
    Problem.TLS: (
        "The server's certificate is not trusted",
        "The connection is not safe, so nothing is shared. Tell your IT contact.",
    ),
}


def _clock(when: float) -> str:
    """``15:30`` today, ``Tue 08:00`` on another day."""
    moment = dt.datetime.fromtimestamp(when).astimezone()
    if moment.date() == dt.datetime.now().astimezone().date():
        return moment.strftime("%H:%M")
    return moment.strftime("%a %H:%M")


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _paused(engine: AgentEngine, reasons: list[PauseReason]) -> tuple[str, str]:
    """Headline and detail for a paused agent, the owner's own pause first."""
    if PauseReason.OWNER in reasons:
        until = engine.paused_until
        headline = f"Paused until {_clock(until)}" if until else "Paused"
        return headline, "Paused by you (the owner of this PC)."
    if PauseReason.DAILY_CAP in reasons:
        cap = engine.rules.daily_cap_bytes
        return "Paused: today's limit reached", (
            f"{human_bytes(cap)} shared today; sharing resumes tomorrow."
            if cap
            else "Sharing resumes tomorrow."
        )
    if PauseReason.SCHEDULE in reasons:
        schedule = engine.rules.schedule
        change = schedule.next_change(engine.now()) if schedule else None
        when = f" at {_clock(change.timestamp())}" if change else ""
        return "Paused: outside sharing hours", f"Sharing resumes{when}, as set in Settings."
    return "Paused by the administrator", "The server's administrator paused this PC."


NOT_SET_UP = StatusView(
    TrayState.ERROR,
    "Not set up yet",
    "Open Settings and enter the server address and enrollment key from your IT contact.",
    "Exitpool — not set up yet",
)


def status_view(engine: AgentEngine | None, now: float) -> StatusView:
    """The owner's view of ``engine`` at unix time ``now`` (``None``: nothing configured)."""
    if engine is None:
        return NOT_SET_UP
    reasons = engine.pause_reasons()
    offline_for = now - engine.offline_since if engine.offline_since else 0.0
    problem = engine.problem
    if problem in _HARD_PROBLEMS:
        assert problem is not None
        state = TrayState.ERROR
        headline, detail = _HARD_PROBLEMS[problem]
    elif engine.status is Status.ONLINE and not reasons:
        state = TrayState.SHARING
        name = engine.agent_name or "this PC"
        headline, detail = f"Sharing as {name}", ""
    elif reasons and (engine.status is Status.ONLINE or PauseReason.ADMIN not in reasons):
        state = TrayState.PAUSED
        headline, detail = _paused(engine, reasons)
    elif offline_for >= LONG_OUTAGE:
        state = TrayState.ERROR
        headline = f"Can't reach {_host(engine.config.server_url)}"
        detail = f"Not connected since {_clock(now - offline_for)}. Retrying on its own."
        if engine.last_error:
            detail += f" ({engine.last_error})"
    else:
        state = TrayState.CONNECTING
        headline = f"Connecting to {_host(engine.config.server_url)}…"
        detail = ""
    return StatusView(state, headline, detail, _tooltip(engine, headline))


def _tooltip(engine: AgentEngine, headline: str) -> str:
    """State, current rates and today's total — all a glance at the tray should need."""
    rates = engine.traffic.rates()
    up, down = (rates[-1].up, rates[-1].down) if rates else (0.0, 0.0)
    totals = engine.traffic.totals()
    return "\n".join(
        (
            f"Exitpool — {headline}",
            f"Now: ↓ {human_rate(down)}  ↑ {human_rate(up)}",
            f"Today: {human_bytes(totals.today_up + totals.today_down)}",
        )
    )

"""What an admin can do to agents: written to the database, applied at once to live ones.

Used by the admin actions and the management commands. In the server process
the change reaches an online agent within milliseconds through
:mod:`server.live`; from another process (a command run in a shell) the
server picks it up from the database at its next flush (``flush_interval``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.utils import timezone

from server import live
from server.fleet.models import Agent
from wire import CloseCode


def set_paused(agents: Iterable[Agent], paused: bool) -> int:
    """Pause or resume agents (kept across reconnects); returns how many were online."""
    ids = [agent.pk for agent in agents]
    Agent.objects.filter(pk__in=ids).update(paused_by_admin=paused)
    running = live.current()
    if running is None:
        return 0
    return sum(running.call(functools.partial(running.set_admin_paused, i, paused)) for i in ids)


def disconnect(agents: Iterable[Agent]) -> int:
    """Close online agents' connections (they reconnect by themselves); returns how many."""
    running = live.current()
    if running is None:
        return 0
    cut = functools.partial(running.disconnect, code=CloseCode.GOING_AWAY, reason="by an admin")
    return sum(running.call(functools.partial(cut, agent.pk)) for agent in agents)


def revoke(agents: Iterable[Agent]) -> int:
    """Revoke agents' credentials and cut off the online ones; returns how many were online."""
    ids = [agent.pk for agent in agents]
    Agent.objects.filter(pk__in=ids, revoked_at__isnull=True).update(revoked_at=timezone.now())
    running = live.current()
    if running is None:
        return 0
    cut = functools.partial(
        running.disconnect, code=CloseCode.UNAUTHORIZED, reason="this agent was revoked"
    )
    return sum(running.call(functools.partial(cut, i)) for i in ids)

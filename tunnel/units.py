"""Numbers as people read them: bytes, rates, quotas and durations.

Shared by the server's admin pages and the agent's windows, so an owner and
an admin see the same figure written the same way.
"""

from __future__ import annotations

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_bytes(count: int | float | None) -> str:
    """``1536`` → ``"1.5 KB"`` (powers of 1024, three significant digits at most)."""
    if count is None:
        return "—"
    value, unit = float(count), 0
    while abs(value) >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{int(value)} B"
    digits = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{digits} {_UNITS[unit]}"


def human_rate(bytes_per_second: float) -> str:
    """``2048.0`` → ``"2 KB/s"``."""
    return f"{human_bytes(bytes_per_second)}/s"


def share(used: int, limit: int | None) -> str:
    """``"1.2 GB of 10 GB (12%)"``, or just the amount when there is no limit."""
    if limit is None:
        return human_bytes(used)
    percent = 100 * used / limit if limit else 100.0
    return f"{human_bytes(used)} of {human_bytes(limit)} ({percent:.0f}%)"


def human_duration(seconds: float) -> str:
    """How long, in its largest whole unit: ``42 s``, ``5 min``, ``2 h``, ``3 days``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    days = seconds // 86400
    return f"{days} day{'' if days == 1 else 's'}"

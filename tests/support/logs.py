"""What a process log must never contain: signs of an exception nobody handled."""

from __future__ import annotations

UNHANDLED_MARKERS = (
    "Traceback (most recent call last)",
    "Task exception was never retrieved",
    "Task was destroyed but it is pending",
    "Exception in callback",
    "Unhandled error",
)
"""asyncio's, Twisted's and Python's own words for an exception that escaped its owner."""


def unhandled_errors(log: str) -> list[str]:
    """The log lines that show an unhandled exception (empty when there is none)."""
    return [line for line in log.splitlines() if any(m in line for m in UNHANDLED_MARKERS)]

"""Which asyncio event loop the server and the headless agent run on.

uvloop (libuv under asyncio's API) does in C what asyncio's selector loop
does in Python for every read, write, accept and timer. On the relay's hot
path that was a third of the server's CPU per keep-alive request and half of
it per MB (``benchmarks/README.md`` has the numbers). It is used when it is
installed (the ``server`` extra installs it, except on Windows, where it does
not exist) unless ``EXITPOOL_EVENT_LOOP=asyncio`` says otherwise. The tray
app runs on Qt's loop (qasync) and never comes here.
"""

from __future__ import annotations

import asyncio
import os

EVENT_LOOP_ENV = "EXITPOOL_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")


def install() -> str:
    """Make new event loops uvloop ones if wanted and installed; returns the loop chosen.

    Raises ``ValueError`` for an unknown choice, or ``uvloop`` asked for but missing.
    """
    choice = os.environ.get(EVENT_LOOP_ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"{EVENT_LOOP_ENV} must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError(f"{EVENT_LOOP_ENV}=uvloop, but uvloop is not installed") from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"

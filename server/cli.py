"""``exitpool-server``: the server's command line.

``run`` starts the server; ``proxyuser``, ``enrollkey`` and every other Django
management command work as ``exitpool-server COMMAND``. ``--data-dir DIR`` may
stand anywhere and applies to all of them.
"""

from __future__ import annotations

import os
import sys

from tunnel import allocator, event_loop


def _pop_data_dir(argv: list[str]) -> list[str]:
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--data-dir":
            os.environ["EXITPOOL_DATA_DIR"] = next(it, "var")
        elif arg.startswith("--data-dir="):
            os.environ["EXITPOOL_DATA_DIR"] = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest


def main(argv: list[str] | None = None) -> None:
    args = _pop_data_dir(list(sys.argv[1:] if argv is None else argv))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
    if args and args[0] == "run":
        allocator.tune()
        try:  # uvloop or not, before daphne makes the loop
            event_loop.install()
        except ValueError as exc:
            sys.exit(f"exitpool-server: {exc}")
        # daphne must install Twisted's asyncio reactor before anything imports Twisted.
        import daphne.server  # noqa: F401

    from django.core.management import execute_from_command_line

    execute_from_command_line(["exitpool-server", *(args or ["help"])])


if __name__ == "__main__":
    main()

"""``exitpool-server run``: daphne, the agents' socket and the gateway on one event loop.

``import daphne.server`` installs Twisted's asyncio reactor on a new loop;
``callWhenRunning`` then starts, on that same loop (DESIGN.md, principle 4),
the ``--http`` port (:mod:`server.http_port`: agents' WebSockets served by
:mod:`server.agent_socket`, every other connection adopted by daphne, which
serves the ASGI app) and the gateway listener. daphne has no ASGI lifespan,
so start-up and shutdown work lives here. On SIGTERM or SIGINT, agents are
closed with 1001 (going away) before the reactor stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.config import ServerConfig

if TYPE_CHECKING:
    from server.first_start import AdminAccount

log = logging.getLogger("server")

OPEN_FILES_WHEN_UNLIMITED = 1 << 20
"""The open-file limit assumed (and asked for) when the hard limit is unlimited."""

SHUTDOWN_GRACE = 2.0
"""Seconds agents get to acknowledge the 1001 close before the process exits."""


def serve(config: ServerConfig) -> int:
    """Run until stopped; returns the process exit code."""
    import daphne.server
    from asgiref.sync import sync_to_async
    from django.core.management import call_command
    from twisted.internet import defer, reactor

    from server import live
    from server.accounting import Accounting
    from server.agent_endpoint import AgentEndpoint
    from server.agent_socket import serve_socket
    from server.asgi import build_application
    from server.first_start import ensure_first_admin
    from server.forwarded import parse_trusted_proxies
    from server.gateway import Gateway
    from server.http_port import HttpPort
    from server.hub import Hub
    from wire import CloseCode

    call_command("migrate", interactive=False, verbosity=0)
    hub = Hub(sticky_max=config.sticky_sessions_max)
    accounting = Accounting(config)
    gateway = Gateway(hub, config, accounting)
    open_files = _raise_open_file_limit()
    gateway.max_connections = min(config.max_proxy_connections, open_files // 2)
    log.info(
        "at most %d proxy connections at once (open-file limit %d)",
        gateway.max_connections,
        open_files,
    )
    trusted = parse_trusted_proxies(config.trusted_proxies)
    endpoint = AgentEndpoint(hub, config)
    server = daphne.server.Server(
        application=build_application(trusted),
        endpoints=["tcp:port=0"],  # daphne insists on one; see below
        signal_handlers=True,
        verbosity=0,
    )
    # daphne listens on nothing: the http port is ours, and hands daphne what is not an agent.
    server.endpoints = []
    http_port = HttpPort(
        *config.http_address,
        agent=lambda sock: serve_socket(sock, endpoint, trusted),
        adopt=lambda sock: reactor.adoptStreamConnection(
            sock.fileno(), sock.family, server.http_factory
        ),
    )
    failed = False
    tasks: set[asyncio.Task[None]] = set()

    async def start_gateway() -> None:
        nonlocal failed
        try:
            http_port.start()
        except OSError as exc:
            log.critical("cannot listen for the web and agents on %s: %s", config.http, exc)
            failed = True
            server.stop()
            return
        try:
            await gateway.start()
        except OSError as exc:
            log.critical("cannot listen for proxy users on %s: %s", config.proxy, exc)
            failed = True
            server.stop()
            return
        try:  # only now, with every listener up, so a failed start never swallows the password
            admin = await sync_to_async(ensure_first_admin)()
        except ValueError as exc:
            log.critical("cannot create the first admin account: %s", exc)
            failed = True
            server.stop()
            return
        _print_banner(config, admin)

    def on_running() -> None:
        loop = asyncio.get_event_loop()
        log.info(
            "event loop: %s", "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
        )
        running = live.Live(config, hub, accounting, gateway, loop)
        live.install(running)
        for coroutine in (start_gateway(), running.run()):
            task = loop.create_task(coroutine)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def shutdown() -> None:
        log.info("shutting down: closing %d agent(s)", len(hub.sessions))
        http_port.close()
        await gateway.close()
        await hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
        loop = asyncio.get_event_loop()
        deadline = loop.time() + SHUTDOWN_GRACE
        while hub.sessions and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for task in list(tasks):  # the housekeeping task writes its last counts as it ends
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        live.install(None)

    # daphne cancels every application when the reactor stops; agents must get
    # their 1001 first, so our shutdown runs before daphne's.
    kill_applications = server.kill_all_applications

    def close_agents_then_kill() -> defer.Deferred[Any]:
        closing: defer.Deferred[Any] = defer.Deferred.fromFuture(asyncio.ensure_future(shutdown()))
        closing.addBoth(lambda _: kill_applications())
        return closing

    server.kill_all_applications = close_agents_then_kill
    reactor.callWhenRunning(on_running)
    server.run()
    _finish_tasks()
    if failed:
        return 1
    return 0


def _finish_tasks() -> None:
    """Run every task left on the loop to completion before the interpreter exits.

    Coroutines still suspended when Python finalizes are destroyed by the
    garbage collector on a stopped loop; with Twisted's reactor that crashed
    the process (SIGSEGV) in most shutdowns here (16 of 18 in a loop).
    """
    loop = asyncio.get_event_loop()
    if loop.is_closed():
        return
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def _raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one; returns the soft limit now in force.

    Every agent and every proxy user holds a descriptor, and the usual default soft limit
    (1024) would cap the server far below what the hard limit allows. Proxy users get at
    most half of it, so a flood of them leaves room for agents, daphne and the database.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else OPEN_FILES_WHEN_UNLIMITED
    if soft == resource.RLIM_INFINITY or soft < wanted:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else OPEN_FILES_WHEN_UNLIMITED


def _print_banner(config: ServerConfig, admin: AdminAccount) -> None:
    """Tell a newcomer where everything is, how to log in, and how to get a user and a key."""
    from server.first_start import banner

    print(banner(config, admin, _command_name()), flush=True)


def _command_name() -> str:
    """How to call this program again from here, e.g. ``.venv/bin/exitpool-server``."""
    from django.conf import settings

    path = os.path.relpath(sys.argv[0]) if sys.argv and sys.argv[0] else "exitpool-server"
    command = path if not path.startswith("..") else os.path.basename(path)
    if Path("var").resolve() != settings.DATA_DIR:
        command += f" --data-dir {settings.DATA_DIR}"
    return command

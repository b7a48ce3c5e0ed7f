"""``exitpool-agent``: the tray app, or with ``--headless`` the same engine without a screen."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

from desktop_agent import __version__
from tunnel import allocator


def ip_address(text: str) -> str:
    """An IPv4 or IPv6 address in its normal spelling; argparse reports anything else."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exitpool-agent",
        description="Share this PC's internet connection with an Exitpool server.",
    )
    parser.add_argument("--version", action="version", version=f"exitpool-agent {__version__}")
    parser.add_argument("--headless", action="store_true", help="run without a tray icon")
    parser.add_argument("--server", help="server URL, e.g. wss://exitpool.example.com/ws/agent")
    parser.add_argument("--key", help="enrollment key (needed only the first time)")
    parser.add_argument("--name", default="", help="name shown to the admin (default: host name)")
    parser.add_argument(
        "--source-address", type=ip_address, help="local IP for all outgoing connections"
    )
    parser.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="let traffic reach this otherwise refused network (repeatable)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="exitpool-agent.json from the admin page: server, enrollment key, name prefix",
    )
    parser.add_argument("--config-dir", type=Path, help="where the credential is kept")
    parser.add_argument("--max-streams", type=int, help="connections carried at once")
    parser.add_argument("--connect-timeout", type=float, help="seconds to connect to a target")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    allocator.tune()
    if not args.headless:
        sys.exit(run_tray(args))
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.exit(run_headless(args))


def run_tray(args: argparse.Namespace) -> int:
    """The tray app; the engine alone (``--headless``) needs no Qt."""
    if not has_screen():
        print(
            "exitpool-agent: no screen to show the tray app on (no DISPLAY or "
            "WAYLAND_DISPLAY); run with --headless --server URL --key KEY",
            file=sys.stderr,
        )
        return 2
    try:
        from desktop_agent.ui.app import run_app
    except ImportError as exc:
        print(
            f"exitpool-agent: the tray app needs PySide6 and qasync ({exc}); "
            "install exitpool[desktop] or run with --headless",
            file=sys.stderr,
        )
        return 2
    return run_app(args)


def has_screen() -> bool:
    """Whether Qt can open windows here (Qt itself would abort with a long plugin list)."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_headless(args: argparse.Namespace) -> int:
    from desktop_agent.engine.client import AgentEngine
    from desktop_agent.engine.config import AgentConfig, default_config_dir
    from desktop_agent.engine.preconfig import PreconfigError, locate
    from tunnel import event_loop

    try:  # a server on the command line needs no search
        preconfig = (
            locate(args.config, args.config_dir or default_config_dir())
            if args.config is not None or not args.server
            else None
        )
    except PreconfigError as exc:
        print(f"exitpool-agent: {exc}", file=sys.stderr)
        return 2
    server = args.server or (preconfig.server if preconfig else "")
    if not server:
        print(
            "exitpool-agent: --server URL is required (or --config exitpool-agent.json)",
            file=sys.stderr,
        )
        return 2

    overrides = {
        key: value
        for key, value in {
            "config_dir": args.config_dir,
            "max_streams": args.max_streams,
            "connect_timeout": args.connect_timeout,
        }.items()
        if value is not None
    }
    try:
        config = AgentConfig(
            server_url=server,
            enrollment_key=args.key or (preconfig.enrollment_key if preconfig else None),
            name=args.name or (preconfig.agent_name() if preconfig else ""),
            source_address=args.source_address,
            allowed_networks=tuple(args.allow_network),
            **overrides,
        )
        engine = AgentEngine(config)
        loop_name = event_loop.install()
    except ValueError as exc:
        print(f"exitpool-agent: {exc}", file=sys.stderr)
        return 2
    logging.getLogger(__name__).info("event loop: %s", loop_name)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, engine.stop)
        await engine.run()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    main()

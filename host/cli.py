"""The `steppe` command: dev, start, list, emit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from .app import Host
from .cli_admin import add_admin_commands
from .logs import LogBook
from .project import ProjectError
from .settings import Settings, load_settings


def _settings(args: argparse.Namespace, mode: str) -> Settings:
    host = getattr(args, "host", None)
    settings = load_settings(Path(args.root), mode=mode, port=args.port, host=host)
    if mode == "dev" and host is None:
        settings.host = ""  # dev listens on 127.0.0.1 whatever steppe.toml says, unless --host is given
    return settings


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after serving, which would end the process before the host drains
    its runners; here a signal only asks the server to stop, and the host shuts down in order after it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


async def _serve(settings: Settings) -> int:
    host = Host(settings)
    try:
        app = await host.start()
    except ProjectError as e:
        host.logs.write("error", f"cannot start: {e}")
        await host.stop()
        return 1
    config = uvicorn.Config(app, host=settings.bind_address, port=settings.port, log_level="warning", lifespan="off",
                            ws_ping_interval=20, ws_ping_timeout=20, ws_max_size=settings.max_body)
    server = _Server(config)
    host.logs.write("info", f"listening on http://{settings.bind_address}:{settings.port} ({settings.mode} mode)")
    try:
        await server.serve()
    finally:
        host.logs.write("info", "shutting down")
        await host.stop()
    return 0 if server.started else 1


def _run(main: Any) -> Any:
    """asyncio.run on uvloop when it is installed (it is, with uvicorn[standard]): faster pipes and sockets."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def cmd_serve(args: argparse.Namespace) -> int:
    return int(_run(_serve(_settings(args, args.command))))


async def _list(settings: Settings, as_json: bool) -> int:
    logs = LogBook(pretty=True, level="error", out=sys.stderr)
    host = Host(settings, logs=logs)
    failed: str | None = None
    try:
        await host.load()
    except ProjectError as e:
        failed = str(e)
    finally:
        await host.stop()
    rows = [{"name": s.name, "type": s.type, "language": s.language, "trigger": s.describe(),
             "status": s.status, "error": s.error or s.unavailable, "path": host.project.rel(s.path)}
            for s in sorted(host.project.steps.values(), key=lambda s: (s.status != "ok", s.name))]
    if as_json:
        print(json.dumps({"steps": rows, "streams": sorted(host.project.streams),
                          "streamErrors": host.project.stream_errors, "error": failed}, indent=2))
    else:
        _print_table(rows)
        for name, st in sorted(host.project.streams.items()):
            print(f"stream {name} ({st.language}) {host.project.rel(st.path)}")
        for path, err in host.project.stream_errors.items():
            print(f"stream file {host.project.rel(Path(path))}: {err}")
        if failed:
            print(f"\nerror: {failed}", file=sys.stderr)
    return 1 if failed else 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["name", "type", "language", "trigger", "status", "path"]
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
        if r["error"]:
            print(f"    ↳ {r['error']}")


def cmd_list(args: argparse.Namespace) -> int:
    return int(_run(_list(_settings(args, "dev"), args.json)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="steppe", description="Run a folder of step files as a backend.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", default=".", help="project root (default: current directory)")
        p.add_argument("--port", type=int, default=None, help="HTTP port (default 3000, or steppe.toml)")

    p = sub.add_parser("dev", help="run the project for development: binds 127.0.0.1, pretty logs")
    common(p)
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("start", help="run the project in production: JSON logs, binds as configured")
    common(p)
    p.add_argument("--host", default=None, help="address to bind (default 0.0.0.0, or steppe.toml)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("list", help="list every step: name, type, language, route or topics, status")
    common(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)
    add_admin_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

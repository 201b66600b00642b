"""The `steppe` command: dev, start, list, emit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import uvicorn

from . import __version__
from .app import Host
from .cli_admin import add_admin_commands, admin_headers
from .cli_generate import add_generate_command
from .cli_ops import add_ops_commands
from .create import add_create_command
from .db import StorageError
from .doctor import add_doctor_command
from .envfiles import load_env_files
from .hostfile import remove_host_file, running_host_url, write_host_file
from .logs import DropHandshakeNoise, LogBook
from .parent_watch import watch_parent_from_env
from .project import ProjectError
from .settings import Settings, load_settings
from .web.admin import step_row
from .web.guard import AdminPolicy
from .web.http_protocol import bounded_protocol, head_bound

MIN_TOKEN_LENGTH = 16  # shorter admin tokens get a warning at start-up


def _settings(args: argparse.Namespace, mode: str) -> Settings:
    host = getattr(args, "host", None)
    load_env_files(Path(args.root).resolve())  # before settings: STEPPE_* lines in .env count as environment
    return load_settings(Path(args.root), mode=mode, port=args.port, host=host)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after serving, which would end the process before the host drains
    its runners; here a signal only asks the server to stop, and the host shuts down in order after it."""

    on_exit: list[Any] = []  # called when a signal asks the server to stop (before it waits for responses)

    def handle_exit(self, sig: int, frame: Any) -> None:
        for hook in self.on_exit:
            hook()
        super().handle_exit(sig, frame)

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


def settle_garbage_collector() -> None:
    """After start-up: move everything loaded so far out of the collector's sight (gc.freeze), and collect
    the young generation less often. Full collections over a large heap were the main source of
    tail latency on the request path (p99 halved in a wrk run)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def _serve(settings: Settings) -> int:
    host = Host(settings)
    try:
        app = await host.start()
    except ProjectError as e:
        host.logs.write("error", f"cannot start: {e}")
        await host.stop()
        return 1
    except StorageError as e:  # e.g. the disk is full while recovering the journal: stop the runners first
        host.logs.write("error", f"cannot start: {e}")
        await host.stop()
        return 2
    settle_garbage_collector()
    # request heads: over max_headers the host answers a JSON 431 (HeaderLimit); far over it (head_bound) the
    # HTTP parser stops reading the connection (httptools: 431 JSON; h11: its own 400)
    config = uvicorn.Config(app, host=settings.bind_address, port=settings.port, log_level="warning", lifespan="off",
                            ws_ping_interval=20, ws_ping_timeout=20, ws_max_size=settings.max_body,
                            http=bounded_protocol(settings.max_headers),
                            h11_max_incomplete_event_size=head_bound(settings.max_headers),
                            ws_per_message_deflate=settings.ws_compression)
    server = _Server(config)
    server.on_exit = [host.telemetry.feed.close] if host.telemetry else []  # end the Workbench's live feeds
    logging.getLogger("uvicorn.error").addFilter(DropHandshakeNoise())
    host.logs.write("info", f"listening on http://{settings.bind_address}:{settings.port} ({settings.mode} mode); "
                    + AdminPolicy.of(settings).describe())
    if settings.admin_token and len(settings.admin_token) < MIN_TOKEN_LENGTH:
        host.logs.write("warn", f"the admin token is shorter than {MIN_TOKEN_LENGTH} characters: use a long random "
                        "one (e.g. `openssl rand -hex 32`)")
    write_host_file(settings)  # `steppe dlq`, `emit`, `list` find this host without --port
    parent_watch = watch_parent_from_env()  # started by a test helper: stop when it is gone
    try:
        await server.serve()
    finally:
        if parent_watch is not None:
            parent_watch.cancel()
        remove_host_file(settings)
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


def _running_host_steps(settings: Settings, find: bool) -> dict[str, Any] | None:
    """The live view of a host already running this project on its port (health included), if any."""
    import httpx  # here, not at the top: `steppe start` never needs it (a fifth of its import time)

    try:
        url = (running_host_url(settings) if find else None) or f"http://127.0.0.1:{settings.port}"
        r = httpx.get(f"{url}/__steppe/steps", timeout=0.5, headers=admin_headers(settings))
        body = r.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("root") == str(settings.root) else None


async def _load_steps(settings: Settings) -> dict[str, Any]:
    host = Host(settings, logs=LogBook(pretty=True, level="error", out=sys.stderr))
    failed: str | None = None
    try:
        await host.load()
    except ProjectError as e:
        failed = str(e)
    finally:
        await host.stop()
    rows = [step_row(host, s) for s in host.project.steps.values()]
    streams = [{"name": s.name, "language": s.language, "path": host.project.rel(s.path)}
               for s in host.project.streams.values()]
    return {"steps": rows, "streams": streams, "streamErrors": host.project.stream_errors, "error": failed}


def cmd_list(args: argparse.Namespace) -> int:
    settings = _settings(args, "dev")
    found = _running_host_steps(settings, find=args.port is None)  # no --port: .steppe/host.json
    listing = found if found is not None else _run(_load_steps(settings))
    rows = sorted(listing["steps"], key=lambda s: (s["status"] != "ok", s["name"]))
    if args.json:
        print(json.dumps({**listing, "steps": rows, "live": found is not None}, indent=2))
    else:
        if found is not None:
            print("(from the running host)")
        _print_table(rows)
        for st in listing["streams"]:
            print(f"stream {st['name']} ({st['language']}) {st['path']}")
        for path, err in listing["streamErrors"].items():
            print(f"stream file {path}: {err}")
        if listing.get("error"):
            print(f"\nerror: {listing['error']}", file=sys.stderr)
    return 1 if listing.get("error") else 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["name", "type", "language", "trigger", "status", "path"]
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
        if r["error"]:
            print(f"    ↳ {r['error']}")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (the command's --help has the rest), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="steppe", description="Run a folder of step files as a backend.")
    parser.add_argument("--version", action="version", version=f"steppe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", default=".", help="project root (default: current directory)")
        p.add_argument("--port", type=int, default=None, help="HTTP port (default 3000, or steppe.toml)")

    p = sub.add_parser("dev", help="run the project for development: binds 127.0.0.1, pretty logs")
    common(p)
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1, or steppe.toml; a non-loopback "
                   "address needs STEPPE_ADMIN_TOKEN for the admin API)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("start", help="run the project in production: JSON logs, binds as configured")
    common(p)
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1, or steppe.toml; 0.0.0.0 for "
                   "every interface, e.g. in a container)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("list", help="list every step: name, type, language, route or topics, status")
    common(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)
    add_admin_commands(sub, common)
    add_doctor_command(sub, common)
    add_create_command(sub)
    add_generate_command(sub, common)
    add_ops_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # `steppe list --json | head`: the reader is gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit-time flush must not fail
        return 0
    except (ValueError, OSError, StorageError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)  # one line
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

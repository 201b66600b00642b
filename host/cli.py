"""The `steppe` command: dev, start, list, emit."""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__

if TYPE_CHECKING:
    from .settings import Settings

# Every other module is imported by the commands that use them, not here: `steppe start` and `steppe dev`
# spawn their runners before importing asyncio and the host (prespawn.py), and import the HTTP side while
# the runners start (serve.py, Host.start).


def _settings(args: argparse.Namespace, mode: str) -> Settings:
    from .envfiles import load_env_files
    from .settings import load_settings

    host = getattr(args, "host", None)
    load_env_files(Path(args.root).resolve())  # before settings: STEPPE_* lines in .env count as environment
    return load_settings(Path(args.root), mode=mode, port=args.port, host=host)


def _run(main: Any) -> Any:
    """asyncio.run on uvloop when it is installed (it is, with uvicorn[standard]): faster pipes and sockets."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _print_stacks(signum: int, frame: Any) -> None:
    """SIGUSR1: every thread's stack to stderr. A Python-level handler, so it runs on the main thread holding
    the GIL, while no other thread can change its frames: faulthandler's own handler runs on whichever thread
    the kernel picks and reads the others' frames as they change (6 of 40 signals just after start-up, while
    the main thread was importing, crashed the host with SIGSEGV)."""
    faulthandler.dump_traceback(all_threads=True)


def cmd_serve(args: argparse.Namespace) -> int:
    # start-up allocates much and frees little: no collections until serve's settle_garbage_collector (about
    # a tenth of the import time)
    gc.disable()
    if hasattr(signal, "SIGUSR1"):  # every thread's stack to stderr, for a host that hangs
        signal.signal(signal.SIGUSR1, _print_stacks)
    from .serve import serve

    settings = getattr(args, "early_settings", None) or _settings(args, args.command)
    return int(_run(serve(settings)))


def _spawn_runners_early(argv: list[str]) -> Settings | None:
    """`start` and `dev`: the project's settings, with its runners spawned before the rest of the host is
    imported (prespawn.py). None when the arguments or the settings are not right: the full parse and
    the usual start then report what is wrong."""
    if not argv or argv[0] not in ("start", "dev") or any(a in ("-h", "--help") for a in argv):
        return None
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    for name, kind in (("--root", str), ("--port", int), ("--host", str)):
        parser.add_argument(name, type=kind, default="." if name == "--root" else None)
    try:
        known, rest = parser.parse_known_args(argv[1:])
        if rest:
            return None
        settings = _settings(known, argv[0])
    except Exception:  # noqa: BLE001 - the full parse and the usual start report it
        return None
    from .prespawn import spawn_early

    spawn_early(settings)
    return settings


def _running_host_steps(settings: Settings, find: bool) -> dict[str, Any] | None:
    """The live view of a host already running this project on its port (health included), if any."""
    import httpx  # here, not at the top: `steppe start` never needs it (a fifth of its import time)

    from .cli_admin import admin_headers
    from .hostfile import running_host_url

    try:
        url = (running_host_url(settings) if find else None) or f"http://127.0.0.1:{settings.port}"
        r = httpx.get(f"{url}/__steppe/steps", timeout=0.5, headers=admin_headers(settings))
        body = r.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("root") == str(settings.root) else None


async def _load_steps(settings: Settings) -> dict[str, Any]:
    from .app import Host
    from .logs import LogBook
    from .project import ProjectError
    from .web.admin import step_row

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
    from .cli_admin import add_admin_commands
    from .cli_generate import add_generate_command
    from .cli_ops import add_ops_commands
    from .create import add_create_command
    from .doctor import add_doctor_command

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


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command chosen in `args`: `steppe dlq list` for `steppe dlq list ...`."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs else None
        if not subs or chosen not in subs[0].choices:
            return parser
        parser = subs[0].choices[chosen]


def main(argv: list[str] | None = None) -> int:
    early = _spawn_runners_early(sys.argv[1:]) if argv is None else None  # the command line itself only
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # argparse would blame the top command: the one that was used says it, with its own --help
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extras)}")
    args.early_settings = early
    from .db import StorageError

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

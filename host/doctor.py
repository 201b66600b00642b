"""`steppe doctor`: check each database of the project's data directory with `PRAGMA integrity_check`, and
with `--repair` move a corrupt one aside (renamed, never deleted) so the next start begins with an empty
one; a project on Redis has its Redis checked too (doctor_redis)."""

from __future__ import annotations

import argparse
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .settings import Settings, load_settings

DATABASES = ("queue.db", "state.db", "streams.db")


def integrity_problem(path: Path) -> str | None:
    """None when SQLite finds the database sound; else what is wrong, in SQLite's words."""
    try:
        conn = sqlite3.connect(str(path), timeout=5)
    except sqlite3.Error as e:
        return str(e)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as e:
        return str(e)
    finally:
        conn.close()
    if rows == [("ok",)]:
        return None
    found = [str(r[0]) for r in rows]
    return "; ".join(found[:5]) + (f" (and {len(found) - 5} more)" if len(found) > 5 else "")


def move_aside(path: Path) -> Path:
    """Rename the database and its -wal/-shm to `<name>.corrupt-<timestamp>[-wal|-shm]`; returns the new path."""
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("-wal", "-shm", ""):  # the main file last: while it is there, the set is whole
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(target.with_name(target.name + suffix))
    return target


def _host_running(settings: Settings) -> bool:
    import httpx  # here, not at the top: `steppe start` imports this module and never needs it

    try:
        body = httpx.get(f"http://127.0.0.1:{settings.port}/__steppe/steps", timeout=0.5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(body, dict) and body.get("root") == str(settings.root)


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings(Path(args.root), port=args.port)
    data = settings.data_path
    if args.repair and _host_running(settings):
        print(f"error: a host is running this project on port {settings.port}; stop it before --repair")
        return 2
    found = [data / name for name in DATABASES if (data / name).exists()]
    remaining = 0
    if settings.uses_redis:
        from .doctor_redis import check_redis

        lines, unusable = check_redis(settings)
        print("\n".join(lines))
        remaining += unusable
    if not found:
        print(f"no SQLite databases in {data}: nothing more to check" if settings.uses_redis
              else f"no databases in {data}: nothing to check")
        return 1 if remaining else 0
    for path in found:
        problem = integrity_problem(path)
        if problem is None:
            print(f"{path}: ok")
            continue
        print(f"{path}: damaged: {problem}")
        if args.repair:
            kept = move_aside(path)
            print(f"  moved to {kept} (kept with its -wal/-shm, if any); the next start begins with an empty "
                  f"{path.name}")
        else:
            remaining += 1
            print("  run `steppe doctor --repair` to move it aside (it is kept) and start with an empty one")
    return 1 if remaining else 0


def add_doctor_command(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                       common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("doctor", help="check the project's databases; --repair moves a damaged one aside")
    common(p)
    p.add_argument("--repair", action="store_true",
                   help="rename each damaged database to <name>.corrupt-<timestamp> so the next start is fresh")
    p.set_defaults(func=cmd_doctor)

"""`steppe generate types|openapi`: files made from the steps' schemas (the project is loaded, not run)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import load_settings

if TYPE_CHECKING:  # imported when the command runs: every other `steppe` command starts without them
    from .app import Host


async def _loaded(root: Path) -> tuple[Host, str | None]:
    from .app import Host
    from .logs import LogBook
    from .project import ProjectError

    host = Host(load_settings(root, mode="dev"), logs=LogBook(pretty=True, level="error", out=sys.stderr))
    failed = None
    try:
        await host.load()
    except ProjectError as e:
        failed = str(e)
    finally:
        await host.stop()
    return host, failed


def cmd_generate(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    host, failed = asyncio.run(_loaded(root))
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    for step in host.project.steps.values():
        if not step.ok:
            print(f"warning: step {step.name} did not load and has no types: {step.error or step.unavailable}",
                  file=sys.stderr)
    if args.what == "openapi":
        from .web.openapi import openapi_document

        text = json.dumps(openapi_document(host.project.ok_steps("api"), f"Steppe: {root.name}"), indent=2)
        if args.out in (None, "-"):
            print(text)
        else:
            Path(args.out).write_text(text + "\n")
            print(f"wrote {args.out}")
        return 0
    from .typegen import project_types, write_types

    types = project_types(list(host.project.ok_steps()), list(host.project.streams.values()))
    out = Path(args.out) if args.out else root
    out.mkdir(parents=True, exist_ok=True)
    write_types(out, types)
    print(f"wrote {out / 'types.d.ts'} and {out / 'steppe_types.py'} ({len(types.steps)} steps, "
          f"{len(types.topics)} topics, {len(types.streams)} streams)")
    return 0


def add_generate_command(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("generate", help="write types (types.d.ts, steppe_types.py) or the OpenAPI document",
                       description="types: types.d.ts and steppe_types.py from the steps' schemas (into --out, "
                                   "default the project root); openapi: the OpenAPI 3.1 document (to --out, "
                                   "default stdout).")
    common(p)
    p.add_argument("what", choices=["types", "openapi"], help="what to generate")
    p.add_argument("--out", default=None, help="types: folder; openapi: file ('-' for stdout)")
    p.set_defaults(func=cmd_generate)

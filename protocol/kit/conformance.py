"""Protocol conformance kit: plays protocol/vectors/*.json against a runner command.

    python protocol/kit/conformance.py [--lang L] [--transport stdio|fds] [--only TEXT] [--json FILE]
        -- <runner command...>

Prints one row per vector (name, PASS/FAIL, detail, ms) and exits 1 when any vector fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `protocol.kit` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "protocol.kit"

from .loader import FIXTURES_DIR, Fixtures, guess_language, load_vectors, runner_markers  # noqa: E402
from .play import run_all  # noqa: E402
from .schemas import MessageChecker  # noqa: E402
from .table import print_table, write_json  # noqa: E402


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    if "--" not in args or args.index("--") == len(args) - 1:
        print("usage: conformance.py [--lang L] [--transport stdio|fds] [--only TEXT] [--json FILE] "
              "-- <runner command...>",
              file=sys.stderr)
        return 2
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="conformance.py")
    parser.add_argument("--lang", help="fixture set: a folder name under protocol/fixtures (default: guessed)")
    parser.add_argument("--fixtures", help="a fixture folder of your own (default: protocol/fixtures/<lang>)")
    parser.add_argument("--transport", choices=["stdio", "fds"], default="stdio",
                        help="stdio: protocol on stdin/stdout (1.0); fds: on the pipe pair in STEPPE_RPC_FDS (1.1)")
    parser.add_argument("--only", help="run the vectors whose name contains this text")
    parser.add_argument("--json", help="also write the outcomes to this file as JSON")
    opts = parser.parse_args(args[:split])
    argv = args[split + 1:]
    lang = opts.lang or guess_language(argv)
    if lang is None:
        parser.error(f"cannot tell the language of {argv}: pass --lang")
    fixture_dir = Path(opts.fixtures) if opts.fixtures else FIXTURES_DIR / lang
    if not fixture_dir.is_dir():
        parser.error(f"no fixtures for {lang!r} at {fixture_dir}")
    vectors = load_vectors(only=opts.only)
    if not vectors:
        parser.error(f"no vector matches {opts.only!r}")
    outcomes = asyncio.run(run_all(vectors, argv, lang, Fixtures(fixture_dir), runner_markers(argv), opts.transport))
    schemas = "on" if MessageChecker().enabled else "off (install jsonschema to check messages)"
    print_table(outcomes, sys.stdout, f"runner: {' '.join(argv)}  language: {lang}  transport: {opts.transport}  "
                                      f"schema checks: {schemas}\n")
    if opts.json:
        write_json(outcomes, opts.json)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

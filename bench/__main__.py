"""`python -m bench [--quick] [--only S4,S5] [--out DIR] [--name NAME] [--peers]`: run the suite, write the results.

Every scenario of issues 5 and 13 runs on this machine in temporary project folders on free loopback ports,
and the table lands in DIR/NAME.md and DIR/NAME.json (default bench/results/latest, or .../quick).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import report
from .loadgen import wrk_description
from .procs import REPO
from .scenarios import Config, registry
from .stats import Row


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small, fast smoke of every scenario (CI)")
    ap.add_argument("--only", default="", help="comma-separated scenarios: S1..S10, R1, W1 or api, events, protocol, "
                                               "state, startup, memory, latency, peers, redis, workbench "
                                               "(default: all)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="directory for the results")
    ap.add_argument("--name", default=None, help="file name of the results (default: latest, or quick)")
    ap.add_argument("--runs", type=int, default=None, help="override the number of runs per measurement")
    ap.add_argument("--keep", action="store_true", help="keep the temporary projects and server logs")
    ap.add_argument("--peers", action="store_true", help="S10 also measures the optional peers (Motia 0.17, "
                                                          "installed by bench/peers/setup-motia)")
    return ap.parse_args(argv)


def selected(only: str, key: str, ids: str) -> bool:
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    return not wanted or key in wanted or bool(wanted & set(ids.split()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # a SIGTERM unwinds like an exception, so every server this run started is stopped on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    cfg = Config.quick_smoke() if args.quick else Config()
    if args.runs:
        cfg = dataclasses.replace(cfg, runs=args.runs, wrk_runs=args.runs, cold_runs=args.runs)
    cfg = dataclasses.replace(cfg, peers=args.peers)
    work = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    rows: list[Row] = []
    errors: dict[str, str] = {}
    started = time.perf_counter()
    try:
        for key, ids, scenario in registry():
            if not selected(args.only, key, ids):
                continue
            print(f"[{ids}] {key} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            (work / key).mkdir()
            try:
                got = scenario(cfg, work / key)
            except Exception:
                errors[ids] = traceback.format_exc()
                print(errors[ids], file=sys.stderr)
                continue
            rows += got
            print(f"[{ids}] done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"temporary projects and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    meta = {"name": args.name or ("quick" if args.quick else "latest"),
            "command": shlex.join([".venv/bin/python", "-m", "bench", *argv]), "date": report.now(),
            "seconds": time.perf_counter() - started, "quick": args.quick, "commit": report.commit(),
            "machine": report.machine(), "load_generator": wrk_description(cfg.connections),
            "config": dataclasses.asdict(cfg)}
    result = report.build(meta, rows, errors)
    md, js = report.write(result, args.out)
    print(report.markdown(result))
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

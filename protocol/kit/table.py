"""The report: a table of vectors, the full details of failures, and a closing count."""

from __future__ import annotations

import json
from typing import TextIO

from .play import Outcome

DETAIL_WIDTH = 90


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(outcomes: list[Outcome], out: TextIO, header: str = "") -> None:
    if header:
        print(header, file=out)
    width = max([len("vector")] + [len(o.name) for o in outcomes])
    print(f"{'vector':<{width}}  result  {'detail':<{DETAIL_WIDTH}}  {'ms':>6}", file=out)
    print(f"{'-' * width}  ------  {'-' * DETAIL_WIDTH}  {'-' * 6}", file=out)
    for o in outcomes:
        result = "PASS" if o.ok else "FAIL"
        first, *more = o.detail.splitlines() or [""]
        detail = _cut(first, DETAIL_WIDTH - 10) + (f" (+{len(more)} more)" if more else "")
        print(f"{o.name:<{width}}  {result:<6}  {detail:<{DETAIL_WIDTH}}  {o.ms:>6.0f}", file=out)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"\n--- {o.name} FAILED\n{o.detail}", file=out)
        if o.stderr.strip():
            tail = "".join(o.stderr.splitlines(keepends=True)[-15:])
            print(f"runner stderr (last lines):\n{tail.rstrip()}", file=out)
    print(f"\n{len(outcomes) - len(failed)} passed, {len(failed)} failed", file=out)


def write_json(outcomes: list[Outcome], path: str) -> None:
    rows = [{"name": o.name, "ok": o.ok, "detail": o.detail, "ms": round(o.ms), "stderr": o.stderr}
            for o in outcomes]
    with open(path, "w") as f:
        json.dump(rows, f, indent=2)

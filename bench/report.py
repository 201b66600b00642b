"""The results: a Markdown table and a JSON file, headed by the machine, command, date and commit."""

from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from .loadgen import WRK
from .procs import REPO
from .stats import Row


def _run(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=REPO)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from steppe.runners import RunnerRegistry

    registry = RunnerRegistry(project_root=REPO)
    return {"cpu": cpu, "cores": os.cpu_count(), "hostname": socket.gethostname(), "os": platform.platform(),
            "python": platform.python_version(),
            "node": _run([registry.get("node").command[0], "--version"]),
            "ruby": _run([registry.get("ruby").command[0], "-e", "print RUBY_VERSION"]),
            "wrk": " ".join(_run([WRK, "-v"]).split()[:2]) or "wrk missing"}


def commit() -> dict[str, Any]:
    return {"commit": _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown",
            "dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"]))}


def fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def build(meta: dict[str, Any], rows: list[Row], errors: dict[str, str]) -> dict[str, Any]:
    scenarios: dict[str, list[dict[str, Any]]] = {f"S{i}": [] for i in range(1, 11)}
    for row in rows:
        scenarios.setdefault(row.scenario, []).append(row.as_json())
    return {**meta, "scenarios": scenarios, "errors": errors}


def markdown(result: dict[str, Any]) -> str:
    m, c = result["machine"], result["commit"]
    lines = [f"# Steppe benchmarks: {result['name']}", "",
             f"- command: `{result['command']}`" + (" (quick smoke: numbers are not meaningful)"
                                                    if result["quick"] else ""),
             f"- date: {result['date']}; took {result['seconds']:.0f} s",
             f"- commit: {c['commit']}" + (" with uncommitted changes" if c["dirty"] else ""),
             f"- machine: {m['cpu']}, {m['cores']} cores ({m['hostname']}; {m['os']})",
             f"- runtimes: Python {m['python']}, Node {m['node']}, Ruby {m['ruby']}; {m['wrk']}",
             f"- HTTP load: {result['load_generator']}",
             "- each figure is the median of the runs, min–max the spread; baselines are measured in the same "
             "run, interleaved with their subjects; the ratio is subject median / baseline median",
             "- the machine is shared with other work: absolute numbers are noisy, only same-run ratios compare", "",
             "| # | measured | median | min–max | baseline: median | ratio | details | target | met |",
             "|---|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for sid, rows in result["scenarios"].items():
        for r in rows:
            spread = f"{fmt(r['min'])}–{fmt(r['max'])}" if r["samples"] else "—"
            base = f"{r['baseline']}: {fmt(r['baseline_median'])}" if r["baseline"] else "—"
            details = "; ".join(f"{k} {fmt(v)}" for k, v in r["extra"].items())
            met = {True: "✓", False: "✗", None: "—"}[r["met"]] if r["target"] else "—"
            median = f"{fmt(r['median'])} {r['metric']}" if r["median"] is not None else "not measured"
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
            lines.append(f"| {sid} | {r['name']} | {median} | {spread} | {base} | {ratio} | {details} | "
                         f"{r['target'] or '—'} | {met} |")
            if r["note"] and (note := f"{sid}: {r['note']}") not in notes:
                notes.append(note)
        if not rows:
            lines.append(f"| {sid} | (not run) | — | — | — | — | — | — | — |")
    if notes:
        lines += ["", "Notes:", *(f"- {n}" for n in notes)]
    if result["errors"]:
        lines += ["", "Errors:"]
        for sid, err in result["errors"].items():
            lines += [f"- {sid}:", "", "```", err.strip(), "```"]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"{result['name']}.md", out / f"{result['name']}.json"
    md.write_text(markdown(result))
    js.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return md, js


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

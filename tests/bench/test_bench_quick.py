"""The benchmark suite's --quick smoke (issues 5 and 13): every scenario runs end to end and reports numbers.

No speed targets are asserted here (the machine is shared); only that each scenario produced figures,
that its baselines were measured in the same run, and that no event was lost.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_support import need_redis

from conftest import REPO, need

SCENARIOS = [*(f"S{i}" for i in range(1, 11)), "R1", "W1"]


def is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def run_quick(out: Path, *args: str, budget: int) -> dict[str, Any]:
    """`python -m bench --quick --out OUT ARGS`, stopped (servers and all) after `budget` seconds; its JSON."""
    proc = subprocess.Popen([sys.executable, "-m", "bench", "--quick", "--out", str(out), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the suite stops the servers it started
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"the quick suite took over {budget} s:\n{err[-6000:]}")
    assert proc.returncode == 0, f"bench failed ({proc.returncode}):\n{err[-6000:]}"
    result: dict[str, Any] = json.loads((out / "quick.json").read_text())
    return result


@pytest.mark.timeout(360)
def test_quick_suite_reports_every_scenario(tmp_path: Path) -> None:
    for tool in ("wrk", "taskset", "node", "ruby"):
        need(tool)
    need_redis()  # R1 measures the Redis backends
    result = run_quick(tmp_path, budget=300)
    assert result["errors"] == {}
    assert result["quick"] is True
    assert "python -m bench --quick" in result["command"]
    assert result["commit"]["commit"] and result["machine"]["cores"]
    for sid in SCENARIOS:
        rows = result["scenarios"][sid]
        assert rows, f"{sid} has no rows"
        for row in rows:
            label = f"{sid} {row['name']}"
            if row["median"] is None:  # only a feature not built yet may go unmeasured, and it must say so
                assert row["note"] and "not implemented" in row["note"], label
                continue
            assert is_number(row["median"]) and row["median"] > 0, label
            assert row["samples"] and all(is_number(x) for x in row["samples"]), label
            assert row["min"] <= row["median"] <= row["max"], label
            if row["baseline"]:
                assert row["baseline_samples"] and is_number(row["ratio"]), label
            if row["target"]:
                assert row["met"] in (True, False), label
        assert any(is_number(r["median"]) for r in rows), f"{sid} measured nothing"
    for row in result["scenarios"]["S4"]:
        assert row["extra"]["lost"] == 0, f"S4 {row['name']}: events lost"
    for sid in ("S1", "S2", "S3", "S9", "S10"):
        assert all(r["extra"]["errors"] == 0 for r in result["scenarios"][sid]), f"{sid}: non-2xx answers"
    latency = result["scenarios"]["S9"]  # each language's step, against raw Starlette + its own bare echo
    assert {r["name"].split(" API step")[0] for r in latency} == {"JS", "TS", "Python", "Ruby"}
    for row in latency:
        echo = next(v for k, v in row["extra"].items() if k.startswith("bare ") and k.endswith("echo p50 µs"))
        assert is_number(echo) and row["extra"]["allowed p50 µs"] == pytest.approx(row["baseline_median"] + 1.5 * echo)
    peers = result["scenarios"]["S10"]  # FastAPI against raw Starlette, then each step against FastAPI
    assert peers[0]["name"].startswith("FastAPI") and peers[0]["baseline"].startswith("raw Starlette")
    assert [r["baseline"] for r in peers[1:]] == [peers[0]["name"]] * 4
    assert not any("Motia" in r["name"] for r in peers), "Motia runs only with --peers"
    table = (tmp_path / "quick.md").read_text()
    assert "| # | measured | median |" in table
    for needle in ("- command:", "- commit:", "- machine:", "taskset -c 1", "servers not pinned"):
        assert needle in table
    assert all(f"| {sid} |" in table for sid in SCENARIOS)


def motia_can_run() -> bool:
    """What bench/motia.py needs: the npm install of bench/peers/setup-motia and a Redis."""
    if not (REPO / "bench" / "peers" / "motia" / "node_modules" / "motia" / "dist" / "cli.mjs").exists():
        return False
    url = os.environ.get("STEPPE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.mark.timeout(240)
def test_quick_peers_measures_motia_or_says_why_not(tmp_path: Path) -> None:
    for tool in ("wrk", "taskset", "node", "ruby"):
        need(tool)
    result = run_quick(tmp_path, "--only", "S10", "--peers", budget=180)
    assert result["errors"] == {} and result["config"]["peers"] is True
    rows = result["scenarios"]["S10"]
    motia = [r for r in rows if "Motia" in r["name"]]
    assert len(motia) == 1 and len(rows) == 6, [r["name"] for r in rows]
    row = motia[0]
    if motia_can_run():  # installed here: measured, the same step answering on both
        assert is_number(row["median"]) and row["median"] > 0, row
        assert row["baseline"].startswith("Motia 0.17") and all(x > 0 for x in row["baseline_samples"]), row
        assert row["extra"]["errors"] == 0 and row["extra"]["baseline errors"] == 0, row
    else:  # not installed (CI): skipped, saying why, with nothing measured
        assert row["median"] is None and not row["samples"], row
        assert row["note"].startswith("skipped: "), row

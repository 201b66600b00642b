"""The live-progress page in a real headless Chromium (Debian's `chromium`, driven by Playwright through
tests/js/browser_check.mjs): click Start, the bar reaches 100 % live and the Ruby result appears.

The screenshot is kept as a test artifact: test-artifacts/live-progress.png (and -midway.png) under the
repo root.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import IN_CI, REPO, need
from streams.test_live_progress import start_example

CHECK = REPO / "tests" / "js" / "browser_check.mjs"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def need_chromium() -> None:
    """Debian's chromium at /usr/bin (scripts/setup installs it): skipped locally without it, failed in CI."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is required under CI (Debian package chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


def need_playwright() -> None:
    if not (REPO / "tests" / "js" / "node_modules" / "playwright-core" / "package.json").exists():
        message = "playwright-core is not installed in tests/js (run runners/node/setup.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def test_the_page_shows_live_progress_in_chromium(tmp_path: Path, start_host: Any) -> None:
    need_chromium()
    need("node")
    need_playwright()
    host = start_example(tmp_path, start_host)
    screenshot = ARTIFACTS / "live-progress.png"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)

    run = subprocess.run(
        ["node", str(CHECK), "--url", f"{host.url}/", "--screenshot", str(screenshot), "--items", "20",
         "--timeout", "30000", "--chromium", CHROMIUM],
        cwd=CHECK.parent, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
             "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "no-browsers")})  # nothing to find, nothing fetched
    lines = run.stdout.strip().splitlines()
    assert lines, f"no output (exit {run.returncode}):\n{run.stderr}\n{host.logs()}"
    report = json.loads(lines[-1])
    assert report["ok"] and run.returncode == 0, f"{report}\n{run.stderr}\n{host.logs()}"

    assert report["pageStatus"] == 200 and report["title"] == "Steppe · live progress"
    assert report["browser"].split(".")[0].isdigit()
    assert report["initial"] == "0"
    bar = report["bar"]
    assert bar["valuenow"] == "100" and bar["text"] == "100%" and bar["width"] == "100%"
    assert bar["visibleWidth"] >= bar["trackWidth"] - 2  # drawn full width, not just labelled 100
    # the bar moved through intermediate values as updates arrived, and never backwards
    values = report["values"]
    assert values == sorted(values) and values[-1] == 100, values
    assert len([v for v in values if 0 < v < 100]) >= 3, values
    assert report["result"].startswith("20 items processed in ") and "written by ruby " in report["result"]
    assert report["resultStatus"] == "done" and report["status"].endswith(": done")
    assert report["startEnabled"]
    assert report["consoleErrors"] == [] and report["pageErrors"] == [] and report["failedRequests"] == []

    assert Path(report["screenshot"]) == screenshot
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

    # the page's one job went through all three languages on the host
    steps = {r.get("step") for r in httpx.get(f"{host.url}/__steppe/logs").json()}
    assert {"StartJob", "RunJob", "PublishResult"} <= steps

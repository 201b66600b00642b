"""schemathesis, bounded, against the polyglot-hello example's /openapi.json with every check: no 5xx, no
undocumented status, no header that breaks the document (issue 8: "Done when")."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from test_example import copy_example

from conftest import RunningHost, need


def test_schemathesis_finds_no_failure_on_the_example(tmp_path):
    need("ruby")
    cli = Path(sys.executable).parent / "schemathesis"
    if not cli.exists():
        cli = Path(shutil.which("schemathesis") or need("schemathesis"))
    host = RunningHost(copy_example(tmp_path), [], None).wait_ready()
    try:
        run = subprocess.run([str(cli), "run", f"{host.url}/openapi.json", "--checks", "all", "--max-examples", "50",
                              "--workers", "1", "--request-timeout", "10"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        host.stop()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout

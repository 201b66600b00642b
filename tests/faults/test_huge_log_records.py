"""Handlers that print or log very long lines, against a real host and its runners.

Seen: a Python handler printing twenty 10 MB lines blocked its runner past the ping timeout, because the host
took ~0.5 s per record to store, print and feed it: the runner was killed, the request got 502 and the
Workbench's telemetry.db grew by 320 MB. Now the host keeps at most 64 KiB of a record's text and of its
fields, marking the cut, so a chatty handler costs its own time only."""

from __future__ import annotations

import os

import httpx

from conftest import write_project

PROJECT = {
    "steps/print_step.py": '''
        import os
        config = {"type": "api", "name": "Print", "path": "/print", "method": "GET", "emits": []}
        async def handler(req, ctx):
            for _ in range(6):
                print("x" * 10_000_000)
            ctx.logger.info("y" * 100_000, {"blob": "z" * 100_000})
            return {"status": 200, "body": {"pid": os.getpid()}}
    ''',
    "steps/print.step.js": '''
        exports.config = { type: 'api', name: 'JsPrint', path: '/jsprint', method: 'GET', emits: [] }
        exports.handler = async (req, { logger }) => {
          for (let i = 0; i < 6; i++) console.log('x'.repeat(10_000_000))
          logger.info('y'.repeat(10_000_000))
          return { status: 200, body: { pid: process.pid } }
        }
    ''',
}


def test_long_log_lines_are_cut_and_cost_the_host_little(tmp_path, start_host):
    host = start_host(write_project(tmp_path, PROJECT))
    for path, step in (("/print", "Print"), ("/jsprint", "JsPrint")):
        r = httpx.get(f"{host.url}{path}", timeout=30)
        assert r.status_code == 200, r.text  # with 20 such lines, 502 on the old code: the runner was killed
        records = host.admin_get(f"/__steppe/logs?step={step}&limit=100", timeout=10).json()
        assert len(records) == 7, [len(x["msg"]) for x in records]
        for record in records:
            assert len(record["msg"]) < 66_000, len(record["msg"])
            assert record["msg"].endswith("more characters cut: a log record keeps at most 65536]")
        if step == "Print":
            fields = records[-1]["fields"]
            assert fields == {"truncated": "the fields were 100011 bytes as JSON, over the 65536 a log record "
                                           "keeps"}, str(fields)[:200]
    telemetry = tmp_path / ".steppe" / "telemetry.db"
    wal = telemetry.with_name("telemetry.db-wal")
    stored = sum(os.path.getsize(f) for f in (telemetry, wal) if f.exists())
    assert stored < 10_000_000, stored  # ~140 MB on the old code

"""Storage faults against a real `steppe` host process (issue 8, section 3): a corrupt record in queue.db,
a full disk (a real small tmpfs as the data directory), database files deleted while it runs, and a
corrupt, read-only or locked database at start-up, with `steppe doctor` to move a damaged one aside.

Handlers record what they ran in files under the project root, so every check is made from what they saw."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tmpfs import fill, remount_read_only, small_tmpfs

from conftest import wait_until, write_project
from steppe.event import Event
from steppe.queue import SqliteQueue, Subscription

PROJECT = {
    "steps/record_step.py": """
        import os

        config = {"type": "event", "name": "Record", "subscribes": ["rec"], "emits": []}

        async def handler(input, context):
            with open(os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "done.log"), "a") as f:
                f.write(f"{input['n']}\\n")
    """,
    "steps/slow_step.py": """
        import asyncio
        import os

        config = {"type": "event", "name": "Slow", "subscribes": ["slow"], "emits": []}

        async def handler(input, context):
            await asyncio.sleep(1.5)
            with open(os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "slow.log"), "a") as f:
                f.write(f"{input['n']}\\n")
    """,
    "steps/parked_step.py": """
        config = {"type": "event", "name": "Parked", "subscribes": ["park"], "emits": [],
                  "infrastructure": {"queue": {"delaySeconds": 3600}}}

        async def handler(input, context):
            pass
    """,
    "steps/emit_api_step.py": """
        config = {"type": "api", "name": "EmitApi", "path": "/emit", "method": "POST", "emits": ["rec"]}

        async def handler(req, context):
            await context.emit({"topic": "rec", "data": req["body"]})
            return {"status": 200, "body": {"ok": True}}
    """,
    "steps/state_api_step.py": """
        config = {"type": "api", "name": "StateApi", "path": "/state", "method": "POST", "emits": []}

        async def handler(req, context):
            await context.state.set("g", str(req["body"]["k"]), req["body"])
            return {"status": 200, "body": {"ok": True}}
    """,
}
FAST_CHECKS = {"STEPPE_STORAGE_CHECK_INTERVAL": "0.2"}


def done(root: Path, log: str = "done.log") -> list[int]:
    path = root / log
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def steppe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppe.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_a_corrupt_record_is_dead_lettered_and_everything_else_is_delivered(tmp_path: Path, start_host) -> None:
    root = write_project(tmp_path, PROJECT)
    (root / ".steppe").mkdir()

    async def journal() -> None:  # ten accepted deliveries, as a previous run left them
        queue = SqliteQueue(root / ".steppe" / "queue.db")
        for n in range(10):
            await queue.put(Event(topic="rec", data={"n": n}, trace_id=f"t{n}"), [Subscription("Record")])
        await queue.close()

    asyncio.run(journal())
    with sqlite3.connect(root / ".steppe" / "queue.db") as db:
        db.execute("UPDATE deliveries SET event = substr(event, 1, 20) WHERE id = 5")
    host = start_host(root)
    wait_until(lambda: len(done(root)) == 9, 15, "the nine intact deliveries")
    assert sorted(done(root)) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    host.wait_log("CorruptRecord")
    (letter,) = httpx.get(f"{host.url}/__steppe/dlq").json()
    assert letter["error"].startswith("CorruptRecord: ") and letter["step"] == "Record"
    shown = steppe("dlq", "show", str(letter["id"]), "--root", str(root), "--port", str(host.port))
    assert shown.returncode == 0 and '"raw": "{\\"id\\":' in shown.stdout
    listed = steppe("dlq", "list", "--root", str(root), "--port", str(host.port))
    assert "(unreadable)" in listed.stdout and "CorruptRecord" in listed.stdout
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "rec", "data": {"n": 10}})
    assert r.status_code == 202
    wait_until(lambda: 10 in done(root), 10, "a new emit after the corrupt record")


def test_a_full_disk_answers_507_json_and_loses_nothing_accepted(tmp_path: Path, start_host) -> None:
    root = write_project(tmp_path, PROJECT)
    with small_tmpfs("4m") as disk:
        host = start_host(root, env={"STEPPE_DATA_DIR": str(disk), **FAST_CHECKS})
        assert (disk / "queue.db").exists()
        for n in range(5):  # running while the disk fills: their outcome cannot be written
            assert httpx.post(f"{host.url}/__steppe/emit", json={"topic": "slow", "data": {"n": n}}).status_code == 202
        filler = fill(disk)
        accepted, refused = [], 0
        with httpx.Client(timeout=30) as http:
            for n in range(200):
                pad = "x" * 2000
                if n % 4:
                    r = http.post(f"{host.url}/__steppe/emit", json={"topic": "rec", "data": {"n": n, "pad": pad}})
                    ok = 202
                else:
                    r = http.post(f"{host.url}/emit", json={"n": n, "pad": pad})
                    ok = 200
                assert r.headers["content-type"].startswith("application/json"), r.text
                if r.status_code == ok:
                    accepted.append(n)
                else:
                    assert r.status_code == 507, r.text
                    assert r.json()["type"] == "StorageFull" and "disk is full" in r.json()["message"]
                    refused += 1
        assert refused > 150, f"only {refused} refused"
        host.wait_log("the disk is full")
        wait_until(lambda: len(done(root, "slow.log")) == 5, 10, "the slow handlers to finish on the full disk")
        host.wait_log("its outcome could not be written")
        assert httpx.get(f"{host.url}/__steppe/events").json()["queue"]["leased"] == 5
        filler.unlink()
        host.wait_log("the queue database accepts writes again")
        wait_until(lambda: set(accepted) <= set(done(root)), 20, f"the {len(accepted)} accepted events")
        host.wait_log("the outcomes of deliveries that could not be written are recorded now")
        assert sorted(done(root, "slow.log")) == list(range(5))  # acked once space came back: not run again
        wait_until(lambda: httpx.get(f"{host.url}/__steppe/events").json()["queue"] == {
            "ready": 0, "leased": 0, "dead": 0}, 10, "an empty queue")
        r = httpx.post(f"{host.url}/emit", json={"n": 1000})
        assert r.status_code == 200
        wait_until(lambda: 1000 in done(root), 10, "an emit once space is back")
        host.stop()


def test_deleted_database_files_are_noticed_and_writes_refused(tmp_path: Path, start_host) -> None:
    root = write_project(tmp_path, PROJECT)
    host = start_host(root, env=FAST_CHECKS)
    for n in range(5):
        assert httpx.post(f"{host.url}/__steppe/emit", json={"topic": "park", "data": {"n": n}}).status_code == 202
    assert httpx.post(f"{host.url}/state", json={"k": 1}).status_code == 200
    for path in [*(root / ".steppe").glob("queue.db*"), *(root / ".steppe").glob("state.db*")]:
        path.unlink()
    logs = host.wait_log("state database changed under the running host")
    assert f"{root / '.steppe' / 'queue.db'} was deleted" in logs
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "park", "data": {"n": 9}})
    assert r.status_code == 503 and r.json()["type"] == "StorageUnavailable", r.text
    r = httpx.post(f"{host.url}/state", json={"k": 2})
    assert r.status_code == 503 and r.json()["type"] == "StorageUnavailable", r.text
    assert httpx.get(f"{host.url}/__steppe/health").status_code == 200  # listings still read
    (rescued,) = (root / ".steppe").glob("queue.db.rescued-*")
    with sqlite3.connect(rescued) as copy:
        assert copy.execute("SELECT COUNT(*) FROM deliveries WHERE step = 'Parked'").fetchone()[0] == 5


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_start_up_against_a_corrupt_database_says_what_to_do_and_doctor_moves_it_aside(
        tmp_path: Path, start_host) -> None:
    root = write_project(tmp_path, PROJECT)
    (root / ".steppe").mkdir()
    (root / ".steppe" / "state.db").write_bytes(b"this is not a database" * 100)
    _one_line_error(steppe("start", "--root", str(root), "--port", "1"),
                    str(root / ".steppe" / "state.db"), "file is not a database", "steppe doctor --repair")
    checked = steppe("doctor", "--root", str(root))
    assert checked.returncode == 1 and "state.db: damaged: file is not a database" in checked.stdout
    repaired = steppe("doctor", "--repair", "--root", str(root))
    assert repaired.returncode == 0, repaired.stdout
    (kept,) = (root / ".steppe").glob("state.db.corrupt-*")
    assert kept.read_bytes() == b"this is not a database" * 100 and f"moved to {kept}" in repaired.stdout
    host = start_host(root)
    assert httpx.post(f"{host.url}/state", json={"k": 1}).status_code == 200
    host.stop()
    assert steppe("doctor", "--root", str(root)).stdout.count(": ok") == 3


def test_doctor_finds_damaged_pages(tmp_path: Path) -> None:
    db_path = tmp_path / ".steppe" / "queue.db"
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE t (x TEXT)")
        db.execute("CREATE INDEX tx ON t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [(f"row {i}" * 20,) for i in range(2000)])
    data = bytearray(db_path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 8192] = b"\xff" * 8192  # two pages in the middle overwritten
    db_path.write_bytes(bytes(data))
    checked = steppe("doctor", "--root", str(tmp_path))
    assert checked.returncode == 1 and "queue.db: damaged: " in checked.stdout, checked.stdout


def test_start_up_against_a_read_only_or_locked_database_says_so(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECT)
    with small_tmpfs("4m") as disk:
        db = sqlite3.connect(disk / "queue.db")
        db.execute("CREATE TABLE x (y)")
        db.close()
        remount_read_only(disk)
        line = _one_line_error(steppe("start", "--root", str(root), "--port", "1", env={"STEPPE_DATA_DIR": str(disk)}),
                               str(disk), "cannot open database")
        assert "writable" in line or "readonly" in line, line
    (root / ".steppe").mkdir()
    holder = sqlite3.connect(root / ".steppe" / "state.db", isolation_level=None)
    holder.execute("CREATE TABLE held (x)")
    holder.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        _one_line_error(steppe("start", "--root", str(root), "--port", "1"), str(root / ".steppe" / "state.db"),
                        "database is locked", "another process holds it")
    finally:
        holder.close()
    assert time.monotonic() - started < 30


def test_a_locked_telemetry_database_leaves_the_host_serving_without_the_workbench_records(
        tmp_path: Path, start_host) -> None:
    """Seen on main (three hosts sharing one project under load): a host exited at start-up with
    "telemetry.db: database is locked". The Workbench's records are not worth the host: it serves, and says why."""
    root = write_project(tmp_path, PROJECT)
    (root / ".steppe").mkdir()
    holder = sqlite3.connect(root / ".steppe" / "telemetry.db", isolation_level=None)
    holder.execute("CREATE TABLE held (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        host = start_host(root, wait=False)
        host.wait_ready(timeout=60)
        answer = httpx.post(f"{host.url}/state", json={"k": "v"}, timeout=10)
        assert answer.status_code == 200, answer.text
        health = httpx.get(f"{host.url}/__steppe/health", timeout=5).json()
        problems = {r["component"]: r for r in health["reasons"]}
        assert "telemetry" in problems and "telemetry.db" in problems["telemetry"]["reason"], health
        assert health["status"] == "degraded", health
    finally:
        holder.close()
